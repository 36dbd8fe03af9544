"""Write a study where DVC and people read it: scaling.json, scaling.csv, plots and a Markdown table."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from scalelab import atomic
from scalelab.scaling.study import Fit, Study

PLOTS = ("loss_vs_params.png", "acc_vs_params.png", "loss_vs_flops.png")
EXTRAPOLATE = 4.0  # draw the law out to 4x the largest rung: "what would the next size buy?"


def write_study(study: Study, out: Path) -> list[Path]:
    """Write `<out>/scaling.json`, `scaling.csv` and `scaling/*.png`; return the files written."""
    atomic.write_json(out / "scaling.json", study.summary())
    with atomic.atomic_path(out / "scaling.csv") as tmp, tmp.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            [
                "size",
                "seed",
                "run_id",
                "model/params",
                "train/flops",
                "test/loss",
                "test/acc",
                "train/seconds",
            ]
        )
        for r in study.records:
            writer.writerow([r.size, r.seed, r.run_id, r.params, r.flops, r.loss, r.acc, r.seconds])
    return [out / "scaling.json", out / "scaling.csv", *plot_study(study, out / "scaling")]


def markdown(study: Study) -> str:
    """The sweep as a Markdown table plus the fitted law: the MLflow parent run's description."""
    lines = [
        "| size | seed | parameters | train FLOPs | test loss | test acc | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in study.records:
        lines.append(
            f"| {r.size} | {r.seed} | {r.params:,} | {r.flops:.3g} | {r.loss:.4f} "
            f"| {r.acc:.4f} | {r.seconds:.1f} |"
        )
    if fit := study.fits.get("loss_vs_params"):
        law = fit.law
        lines += ["", f"**Fit** L(N) = {law.E:.4f} + {law.A:.4g}·N^(−{law.alpha:.3f})"]
        if fit.boot:
            lines.append(
                f"(95% CI: α ∈ [{fit.boot.alpha.low:.3f}, {fit.boot.alpha.high:.3f}], "
                f"E ∈ [{fit.boot.E.low:.4f}, {fit.boot.E.high:.4f}])"
            )
    if study.holdout:
        h = study.holdout
        lines.append(
            f"\nFit without `{h['size']}` predicts its test loss {h['predicted_test/loss']:.4f}; "
            f"observed {h['observed_test/loss']:.4f} (relative error {h['rel_error']:.1%})."
        )
    lines += [f"\n_Note: {note}_" for note in study.notes]
    return "\n".join(lines)


def _per_size(study: Study, values: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per size: x (parameters), mean and standard deviation over seeds."""
    xs, means, stds = [], [], []
    for size in study.sizes():
        picked = [v for r, v in zip(study.records, values, strict=True) if r.size == size]
        xs.append(next(r.params for r in study.records if r.size == size))
        means.append(np.mean(picked))
        stds.append(np.std(picked))
    return np.array(xs, dtype=float), np.array(means), np.array(stds)


def _draw_law(ax, fit: Fit | None, x: np.ndarray, transform=lambda v: v, label: str = "fit") -> None:
    if fit is None or len(x) == 0:  # too few sizes for a law: the plot shows the runs and says so
        ax.text(0.5, 0.95, "no fit: fewer than 3 sizes", transform=ax.transAxes, ha="center")
        return
    grid = np.geomspace(x.min() / 1.5, x.max() * EXTRAPOLATE, 200)
    law = fit.law
    ax.plot(
        grid,
        transform(law(grid)),
        color="C1",
        label=f"{label}: {law.E:.3g} + {law.A:.3g}·x^(−{law.alpha:.3f})",
    )
    if fit.boot:
        low, high = fit.boot.band(grid)
        ax.fill_between(
            grid, transform(low), transform(high), color="C1", alpha=0.2, label="95% bootstrap band"
        )
    ax.axvline(x.max(), color="grey", lw=0.8, ls=":")


def plot_study(study: Study, folder: Path) -> list[Path]:
    """Loss vs parameters (log-log), accuracy vs parameters, loss vs training FLOPs.

    Always writes all three (DVC declares them), drawing the law where there is one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = study.records
    files = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        with atomic.atomic_path(folder / name) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        files.append(folder / name)

    fig, ax = plt.subplots(figsize=(7, 5))
    x, mean, std = _per_size(study, [r.loss for r in records])
    ax.scatter([r.params for r in records], [r.loss for r in records], s=10, color="C0", alpha=0.4)
    ax.errorbar(x, mean, yerr=std, fmt="o", color="C0", capsize=3, label="test loss (mean ± sd over seeds)")
    for size, xi, yi in zip(study.sizes(), x, mean, strict=True):
        ax.annotate(size, (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
    _draw_law(ax, study.fits.get("loss_vs_params"), x)
    if study.holdout:
        ax.scatter(
            [x.max()],
            [study.holdout["predicted_test/loss"]],
            marker="x",
            s=60,
            color="C3",
            label=f"predicted without {study.holdout['size']} ({study.holdout['rel_error']:.1%} off)",
        )
    ax.set(
        xscale="log", yscale="log", xlabel="parameters", ylabel="test loss", title="Test loss vs model size"
    )
    ax.legend(fontsize=8)
    save(fig, PLOTS[0])

    fig, ax = plt.subplots(figsize=(7, 5))
    x, mean, std = _per_size(study, [r.acc for r in records])
    ax.errorbar(x, mean, yerr=std, fmt="o", color="C0", capsize=3, label="test accuracy")
    _draw_law(ax, study.fits.get("error_vs_params"), x, transform=lambda e: 1 - e, label="1 − error fit")
    ax.set(xscale="log", xlabel="parameters", ylabel="test accuracy", title="Test accuracy vs model size")
    ax.legend(fontsize=8)
    save(fig, PLOTS[1])

    fig, ax = plt.subplots(figsize=(7, 5))
    flops = np.array([r.flops for r in records])
    ax.scatter(flops, [r.loss for r in records], color="C0", label="runs")
    _draw_law(ax, study.fits.get("loss_vs_flops"), flops)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="training FLOPs",
        ylabel="test loss",
        title="Test loss vs training compute",
    )
    ax.legend(fontsize=8)
    save(fig, PLOTS[2])
    return files
