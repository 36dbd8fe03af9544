"""The stable, config-derived places where stages write (and `dvc.yaml` declares) results."""

from __future__ import annotations

from pathlib import Path


def prepared_dir(dataset: str) -> Path:
    """`data/prepared/<dataset>/`: tensors and manifest from the prepare stage."""
    return Path("data/prepared") / dataset


def model_dir(size: str) -> Path:
    """`models/<size>/`: the checkpoint of the train stage."""
    return Path("models") / size


def report_dir(size: str) -> Path:
    """`reports/<size>/`: metrics and plots of the train and evaluate stages."""
    return Path("reports") / size
