"""Score a trained network on a test split and write the report DVC and MLflow read."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from scalelab import atomic, paths
from scalelab.config import Config
from scalelab.training.losses import loss_fn


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits for every row of `x`, computed in large batches: (N, ...) -> (N, num_classes)."""
    net.eval()
    return torch.cat([net(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def score(logits: torch.Tensor, y: torch.Tensor, loss: str) -> tuple[dict[str, float], np.ndarray]:
    """Test metrics under their MLflow names, and the (true, predicted) confusion matrix."""
    num_classes = logits.shape[-1]
    per_class = MulticlassAccuracy(num_classes, average=None)(logits, y)
    metrics = {
        "test/loss": float(loss_fn(loss, logits, y)),
        "test/acc": float(MulticlassAccuracy(num_classes, average="micro")(logits, y)),
        "test/f1_macro": float(MulticlassF1Score(num_classes, average="macro")(logits, y)),
        **{f"test/acc_class/{c}": float(a) for c, a in enumerate(per_class)},
    }
    confusion = MulticlassConfusionMatrix(num_classes)(logits, y).numpy()
    return metrics, confusion


def write_predictions(path: Path, y: torch.Tensor, logits: torch.Tensor, class_names: list[str]) -> None:
    """One row per test sample (`actual,predicted`), the input of `dvc plots`' confusion template."""
    with atomic.atomic_path(path) as tmp, tmp.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["actual", "predicted"])
        for true, pred in zip(y.tolist(), logits.argmax(-1).tolist(), strict=True):
            writer.writerow([class_names[true], class_names[pred]])


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

    Writes `reports/runs/<size>-s<seed>/{metrics.json, predictions.csv, confusion.png}` and adds
    the metrics and the plot to the MLflow run that trained the checkpoint.
    """
    from scalelab import tracking
    from scalelab.data.prepared import load_split, read_manifest
    from scalelab.training.saved import CHECKPOINT_FILE, load_network

    size, seed = config.model.size, config.seed
    out = paths.run_reports(size, seed)
    net, meta = load_network(paths.model_dir(size, seed) / CHECKPOINT_FILE)
    data_dir = paths.prepared_dir(config.data.name)
    classes = read_manifest(data_dir)["class_names"]
    x, y = load_split(data_dir, "test")
    logits = predict(net, x)
    metrics, confusion = score(logits, y, meta["loss"])
    atomic.write_json(out / "metrics.json", metrics)
    write_predictions(out / "predictions.csv", y, logits, classes)
    title = f"{config.data.name} {config.model.name}-{paths.run_key(size, seed)}: test confusion"
    plot_confusion(out / "confusion.png", confusion, classes, title)
    if meta["run_id"]:
        tracking.log_evaluation(
            config.tracking, meta["run_id"], metrics, [out / "metrics.json", out / "confusion.png"]
        )
    return metrics
