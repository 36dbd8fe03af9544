"""What MLflow calls a study's experiment and a training's run, and how a config becomes params."""

from __future__ import annotations

import os
from typing import Any

from scalelab import paths
from scalelab.config import Config

# Set by a multirun for its jobs: a sweep over `data=` or `model=` keeps its runs under its parent.
SWEEP_EXPERIMENT_ENV = "SCALELAB_SWEEP_EXPERIMENT"


def experiment_name(config: Config) -> str:
    """One experiment per study: `tracking.experiment`, else the multirun's, else `<data>-<model>`."""
    return (
        config.tracking.experiment
        or os.environ.get(SWEEP_EXPERIMENT_ENV)
        or f"{config.data.name}-{config.model.name}"
    )


def run_name(config: Config) -> str:
    """`<model>-<size>-s<seed>`, e.g. `mlp-l-s0` (`mlp-l-d1000-s0` on a data axis,
    `mlp-trainer.lr=3e-3-l-s0` in a variant): the runs table reads like the ladder."""
    key = paths.run_key(config.model.size, config.seed, config.data.train_samples, config.variant)
    return f"{config.model.name}-{key}"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> `{"model.ladder.xs.width": "4", ...}` for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
