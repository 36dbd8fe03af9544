"""The stable, config-derived places where stages write (and `dvc.yaml` declares) results.

A trained model lives under its cell and seed, `<size>/s<seed>` (e.g. `m/s0`), the same place
whichever way it was launched (dvc repro, Hydra multirun, DVC experiment). A study with a data
axis (`data.train_samples`) adds it to the cell: `<size>/d<samples>/s<seed>` (e.g. `m/d1000/s0`).
Each DVC stage owns one cell folder, holding the cell's seeds. A multirun that also sweeps other
settings (`trainer.lr=1e-3,3e-3`, `data=digits,fashion_mnist`) puts each combination of them, its
*variant* (`scalelab.variants`), in front: `trainer.lr=0.003/m/s0`, so no two runs share a path.
"""

from __future__ import annotations

from pathlib import Path

REPORTS = Path("reports")


def cell(size: str, samples: int | None = None, variant: str = "") -> str:
    """`<size>`, or `<size>/d<samples>` on a data axis, behind `<variant>/` if there is one: the
    folder of one (model, data) size."""
    folder = size if samples is None else f"{size}/d{samples}"
    return f"{variant}/{folder}" if variant else folder


def run_key(size: str, seed: int, samples: int | None = None, variant: str = "") -> str:
    """`<size>-s<seed>` (`<size>-d<samples>-s<seed>` on a data axis, `<variant>-…` in a variant):
    names a trained model (in messages and, prefixed, its MLflow run)."""
    return f"{cell(size, samples, variant).replace('/', '-')}-s{seed}"


def prepared_dir(dataset: str) -> Path:
    """`data/prepared/<dataset>/`: tensors and manifest from the prepare stage."""
    return Path("data/prepared") / dataset


def model_dir(size: str, seed: int, samples: int | None = None, variant: str = "") -> Path:
    """`models/<cell>/s<seed>/`: the checkpoint of the train stage."""
    return Path("models") / cell(size, samples, variant) / f"s{seed}"


def train_reports(
    size: str, seed: int, reports: Path = REPORTS, samples: int | None = None, variant: str = ""
) -> Path:
    """`reports/train/<cell>/s<seed>/`: what the train stage reports (run.json, train_metrics.json)."""
    return reports / "train" / cell(size, samples, variant) / f"s{seed}"


def run_reports(
    size: str, seed: int, reports: Path = REPORTS, samples: int | None = None, variant: str = ""
) -> Path:
    """`reports/runs/<cell>/s<seed>/`: what the evaluate stage reports (metrics.json, tables, plots)."""
    return reports / "runs" / cell(size, samples, variant) / f"s{seed}"


def history_file(
    size: str, seed: int, reports: Path = REPORTS, samples: int | None = None, variant: str = ""
) -> Path:
    """`reports/history/<cell>/s<seed>.csv`: a training's metrics per epoch, a DVC plot."""
    return reports / "history" / cell(size, samples, variant) / f"s{seed}.csv"


def rung_metrics(size: str, reports: Path = REPORTS) -> Path:
    """`reports/metrics/<size>.json`: the rung's test metrics per run, DVC metrics."""
    return reports / "metrics" / f"{size}.json"
