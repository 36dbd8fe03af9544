"""The stable, config-derived places where stages write (and `dvc.yaml` declares) results.

A trained model is keyed by its rung and seed, `<size>-s<seed>` (e.g. `m-s0`), the same key
whichever way it was launched (dvc repro, Hydra multirun, DVC experiment).
"""

from __future__ import annotations

from pathlib import Path

REPORTS = Path("reports")


def run_key(size: str, seed: int) -> str:
    """`<size>-s<seed>`: names a trained model's folders (and, prefixed, its MLflow run)."""
    return f"{size}-s{seed}"


def prepared_dir(dataset: str) -> Path:
    """`data/prepared/<dataset>/`: tensors and manifest from the prepare stage."""
    return Path("data/prepared") / dataset


def model_dir(size: str, seed: int) -> Path:
    """`models/<size>-s<seed>/`: the checkpoint of the train stage."""
    return Path("models") / run_key(size, seed)


def run_reports(size: str, seed: int) -> Path:
    """`reports/runs/<size>-s<seed>/`: what the train and evaluate stages report for one model."""
    return REPORTS / "runs" / run_key(size, seed)
