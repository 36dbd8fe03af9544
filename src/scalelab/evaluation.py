"""Score a trained network on a test split and write the report DVC and MLflow read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from scalelab import atomic, compute_budget, paths
from scalelab.config import Config
from scalelab.training.losses import loss_fn

# What each evaluated run shows in the MLflow UI (artifacts under evaluation/): the confusion
# matrix, precision/recall/F1 per class, accuracy per class and per speaker, the worst mistakes.
EVALUATION_FILES = ("confusion.png", "per_class.csv", "accuracy_by_group.csv", "misclassified.png")


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits for every row of `x`, computed in large batches: (N, ...) -> (N, num_classes)."""
    net.eval()
    return torch.cat([net(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def score(logits: torch.Tensor, y: torch.Tensor, loss: str) -> tuple[dict[str, float], np.ndarray]:
    """Test metrics under their MLflow names, and the (true, predicted) confusion matrix."""
    num_classes = logits.shape[-1]
    metrics = {
        "test/loss": float(loss_fn(loss, logits, y)),
        "test/acc": float(MulticlassAccuracy(num_classes, average="micro")(logits, y)),
        "test/f1_macro": float(MulticlassF1Score(num_classes, average="macro")(logits, y)),
    }
    confusion = MulticlassConfusionMatrix(num_classes)(logits, y).numpy()
    return metrics, confusion


def per_class(logits: torch.Tensor, y: torch.Tensor, class_names: list[str]) -> list[dict[str, object]]:
    """Rows `{class, support, precision, recall, f1}`: what each class gets right and confuses."""
    n = logits.shape[-1]
    columns = {
        "precision": MulticlassPrecision(n, average=None, zero_division=0)(logits, y),
        "recall": MulticlassRecall(n, average=None, zero_division=0)(logits, y),
        "f1": MulticlassF1Score(n, average=None, zero_division=0)(logits, y),
    }
    support = torch.bincount(y, minlength=n)
    return [
        {"class": name, "support": int(support[c]), **{k: float(v[c]) for k, v in columns.items()}}
        for c, name in enumerate(class_names)
    ]


def plot_misclassified(
    path: Path, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor, class_names: list[str], title: str,
    count: int = 16,
) -> list[int]:  # fmt: skip
    """The `count` test inputs the model got wrong most confidently, as a PNG grid: images,
    spectrograms (mel bands up, time across) or 1-D signals (curves), each titled
    `true -> predicted (confidence)`.
    Returns their indices, most confident first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = torch.softmax(logits.float(), -1)
    confidence, predicted = probs.max(-1)
    wrong = torch.nonzero(predicted != y).squeeze(1)
    worst = wrong[torch.argsort(confidence[wrong], descending=True)][:count].tolist()
    cols = 4
    rows = max(1, -(-len(worst) // cols))
    wide = x.shape[-1] > x.shape[-2]  # spectrograms: more frames than mel bands
    height = rows * 2.3
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * (3.2 if wide else 2.2), height), dpi=100, squeeze=False
    )
    # fixed margins, not tight_layout: no tick labels to fit, and it doubled the plot's time
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.55 / height, wspace=0.1, hspace=0.3)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, worst, strict=False):
        if x.shape[-2] == 1:  # a 1-D signal (mnist1d): draw it as a curve, its shape is what counts
            ax.axis("on")
            ax.plot(x[i, 0, 0].numpy(), color="C0")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.imshow(
                x[i, 0].numpy(),
                cmap="magma" if wide else "gray",
                origin="lower" if wide else "upper",
                aspect="auto",
            )
        ax.set_title(f"{class_names[y[i]]} -> {class_names[predicted[i]]} ({confidence[i]:.2f})", fontsize=8)
    if not worst:
        axes.flat[0].text(0.5, 0.5, "no test input misclassified", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return worst


def accuracy_by_group(
    logits: torch.Tensor, y: torch.Tensor, groups: dict[str, list[str]], class_names: list[str]
) -> list[dict[str, object]]:
    """Rows `{by, group, count, accuracy}`: per true class, then per value of each sample group
    (e.g. per speaker) — which voices, or which classes, the model fails on."""
    correct = (logits.argmax(-1) == y).numpy()
    keys = {"class": [class_names[c] for c in y.tolist()], **groups}
    rows: list[dict[str, object]] = []
    for by, values in keys.items():
        labels = np.asarray(values)
        for group in sorted(set(values)):
            hits = correct[labels == group]
            rows.append({"by": by, "group": group, "count": len(hits), "accuracy": float(hits.mean())})
    return rows


def write_predictions(path: Path, y: torch.Tensor, logits: torch.Tensor, class_names: list[str]) -> None:
    """One row per test sample (`actual,predicted`), the input of `dvc plots`' confusion template."""
    pairs = zip(y.tolist(), logits.argmax(-1).tolist(), strict=True)
    rows = [{"actual": class_names[t], "predicted": class_names[p]} for t, p in pairs]
    atomic.write_csv(path, rows, ["actual", "predicted"])


def plot_confusion(path: Path, confusion: np.ndarray, class_names: list[str], title: str) -> None:
    """The confusion matrix as a PNG: rows true class, columns predicted, counts in cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    image = ax.imshow(confusion, cmap="Blues")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = confusion.max() / 2
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > threshold else "black",
        )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def evaluate_run(config: Config) -> dict[str, float]:
    """Score the checkpoint of `config`'s rung and seed on the test split; write and log the report.

    Writes `reports/runs/<size>/s<seed>/`: metrics.json, predictions.csv and `EVALUATION_FILES`,
    and adds the metrics and files to the MLflow run that trained the checkpoint. Per-group
    accuracies (e.g. `test/acc_speaker/theo`) are metrics too.
    """
    from scalelab.data.split_files import load_groups, load_split, read_manifest
    from scalelab.tracking import runs
    from scalelab.training.saved import CHECKPOINT_FILE, load_network

    config = compute_budget.resolve(config)  # a budget's run trained on what it bought
    size, seed, samples, variant = config.model.size, config.seed, config.data.train_samples, config.variant
    out = paths.run_reports(size, seed, samples=samples, variant=variant)
    net, meta = load_network(paths.model_dir(size, seed, samples, variant) / CHECKPOINT_FILE)
    data_dir = paths.prepared_dir(config.data.name)
    manifest = read_manifest(data_dir)
    if manifest.get("kind") == "text":
        return _evaluate_text(config, net, meta, manifest, out)
    classes = manifest["class_names"]
    x, y = load_split(data_dir, "test")
    logits = predict(net, x)
    metrics, confusion = score(logits, y, meta["loss"])
    groups = accuracy_by_group(logits, y, load_groups(data_dir, "test"), classes)
    metrics |= {f"test/acc_{r['by']}/{r['group']}": r["accuracy"] for r in groups if r["by"] != "class"}
    atomic.write_json(out / "metrics.json", metrics)
    write_predictions(out / "predictions.csv", y, logits, classes)
    atomic.write_csv(out / "accuracy_by_group.csv", groups, ["by", "group", "count", "accuracy"])
    atomic.write_csv(
        out / "per_class.csv",
        per_class(logits, y, classes),
        ["class", "support", "precision", "recall", "f1"],
    )
    name = f"{config.data.name} {config.model.name}-{paths.run_key(size, seed, samples, variant)}"
    plot_confusion(out / "confusion.png", confusion, classes, f"{name}: test confusion")
    plot_misclassified(out / "misclassified.png", x, y, logits, classes, f"{name}: most confident mistakes")
    if meta["run_id"]:
        files = [out / file for file in (*EVALUATION_FILES, "metrics.json")]
        runs.log_evaluation(config.tracking, meta["run_id"], metrics, files)
    return metrics


def _evaluate_text(config: Config, net: nn.Module, meta: dict, manifest: dict, out: Path) -> dict[str, float]:
    """A language model's evaluation: bits per character and a text sample (text_evaluation.py)."""
    from scalelab.data.split_files import load_split
    from scalelab.text_evaluation import SAMPLE_FILE, score_text, write_sample
    from scalelab.tracking import runs

    x, y = load_split(paths.prepared_dir(config.data.name), "test")
    metrics, predicted = score_text(net, x, y)
    atomic.write_json(out / "metrics.json", metrics)
    # one row per test character: which characters the model confuses (the champion's: a DVC plot)
    chars = manifest["class_names"]
    pairs = zip(y.flatten().tolist(), predicted.flatten().tolist(), strict=True)
    rows = ({"actual": chars[t], "predicted": chars[p]} for t, p in pairs)
    atomic.write_csv(out / "predictions.csv", rows, ["actual", "predicted"])
    write_sample(out / SAMPLE_FILE, net, x, manifest)
    if meta["run_id"]:
        runs.log_evaluation(
            config.tracking, meta["run_id"], metrics, [out / SAMPLE_FILE, out / "metrics.json"]
        )
    return metrics


def evaluate_rung(config: Config) -> None:
    """Evaluate `config`'s run (with `all_seeds`, each seed and training-set size of its rung),
    a line each, and record their test metrics in `reports/metrics/<size>.json`."""
    results = {}
    for run in map(compute_budget.resolve, config.runs()):
        metrics = evaluate_run(run)
        size, seed, samples = run.model.size, run.seed, run.data.train_samples
        print(f"evaluated {paths.run_key(size, seed, samples)}: test/acc={metrics['test/acc']:.4f}")
        results[f"s{seed}" if samples is None else f"d{samples}/s{seed}"] = metrics
    write_rung_metrics(config.model.size, results)


def write_rung_metrics(size: str, results: dict[str, dict[str, float]]) -> Path:
    """`reports/metrics/<size>.json`: each run's test metrics under its cell and seed (`s0`,
    `d1000/s0`), merged into what the file holds, so `dvc metrics diff` compares every run."""
    from scalelab.readback import read_json

    path = paths.rung_metrics(size)
    current = read_json(path) if path.is_file() else {}
    atomic.write_json(path, current | results)
    return path
