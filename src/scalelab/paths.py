"""The stable, config-derived places where stages write (and `dvc.yaml` declares) results.

A trained model lives under its rung and seed, `<size>/s<seed>` (e.g. `m/s0`), the same place
whichever way it was launched (dvc repro, Hydra multirun, DVC experiment). Each DVC rung stage
owns one `<size>/` folder, holding the rung's seeds.
"""

from __future__ import annotations

from pathlib import Path

REPORTS = Path("reports")


def run_key(size: str, seed: int) -> str:
    """`<size>-s<seed>`: names a trained model (in messages and, prefixed, its MLflow run)."""
    return f"{size}-s{seed}"


def prepared_dir(dataset: str) -> Path:
    """`data/prepared/<dataset>/`: tensors and manifest from the prepare stage."""
    return Path("data/prepared") / dataset


def model_dir(size: str, seed: int) -> Path:
    """`models/<size>/s<seed>/`: the checkpoint of the train stage."""
    return Path("models") / size / f"s{seed}"


def train_reports(size: str, seed: int, reports: Path = REPORTS) -> Path:
    """`reports/train/<size>/s<seed>/`: what the train stage reports (run.json, train_metrics.json)."""
    return reports / "train" / size / f"s{seed}"


def run_reports(size: str, seed: int, reports: Path = REPORTS) -> Path:
    """`reports/runs/<size>/s<seed>/`: what the evaluate stage reports (metrics.json, tables, plots)."""
    return reports / "runs" / size / f"s{seed}"
