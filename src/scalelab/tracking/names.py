"""What MLflow calls a study's experiment and a training's run, and how a config becomes params."""

from __future__ import annotations

from typing import Any

from scalelab import paths
from scalelab.config import Config


def experiment_name(config: Config) -> str:
    """One experiment per study: `tracking.experiment`, else `<data>-<model>`."""
    return config.tracking.experiment or f"{config.data.name}-{config.model.name}"


def run_name(config: Config) -> str:
    """`<model>-<size>-s<seed>`, e.g. `mlp-l-s0` (`mlp-l-d1000-s0` on a data axis): the runs
    table reads like the ladder."""
    return f"{config.model.name}-{paths.run_key(config.model.size, config.seed, config.data.train_samples)}"


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
