"""A run's variant: the settings, beyond size, seed and data size, that a multirun sweeps.

`python -m pipelines.train -m model.size=s,m trainer.lr=1e-3,3e-3` trains four runs in two
variants, `trainer.lr=1e-3` and `trainer.lr=3e-3`. The variant is the folder in front of a run's
cell (`models/trainer.lr=3e-3/m/s0`, `scalelab.paths`), part of its MLflow run name and its tag
`sweep.variant`, and each variant of a sweep gets its own law, so any setting can be swept (an
Optuna search included) without two runs overwriting each other.

The sweep's parent knows which keys are swept; it tells its jobs through the environment
(`VARIES_ENV`, as it hands them the parent run's id), and each job names its variant from its
own overrides.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable

# the study's own axes: they make the cell (a compute budget picks the cell's training-set size)
AXES = ("model.size", "seed", "data.train_samples", "data.compute_budget")
VARIES_ENV = "SCALELAB_SWEEP_VARIES"
VARIANT_TAG = "sweep.variant"
_MAX_NAME = 64
_SAFE = re.compile(r"[A-Za-z0-9._=,+-]+")  # what a folder, a run name and a DVC path all take


def name(settings: dict[str, str]) -> str:
    """`key=value,…` sorted by key (`""` for none); `h` and 10 hex digits of it when that is
    longer than 64 characters or holds a character a folder name should not."""
    if not settings:
        return ""
    text = ",".join(f"{key}={value}" for key, value in sorted(settings.items()))
    if len(text) <= _MAX_NAME and _SAFE.fullmatch(text):
        return text
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:10]


def of_overrides(overrides: Iterable[str], varies: Iterable[str]) -> str:
    """The variant of a job whose command-line overrides are `overrides`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = set(varies)
    chosen = {
        o.get_key_element(): o.get_value_element_as_str()
        for o in OverridesParser.create().parse_overrides(list(overrides))
        if o.get_key_element() in keys
    }
    return name(chosen)


def announce(varies: Iterable[str]) -> None:
    """Tell the sweep's jobs (through their environment) which keys make their variant."""
    os.environ[VARIES_ENV] = ",".join(sorted(varies))


def announced() -> list[str]:
    """The keys the sweep's parent announced; [] outside a sweep over other settings."""
    return [key for key in os.environ.get(VARIES_ENV, "").split(",") if key]


def withdraw() -> None:
    """The sweep is over: forget its keys."""
    os.environ.pop(VARIES_ENV, None)


def differs_in_data(varies: list[str]) -> bool:
    """Whether variants over the keys `varies` train or validate on different data
    (`data.train_samples` and `data.compute_budget`, the data axes, are not variant keys)."""
    return any(key.lstrip("+~").split("@")[0].split(".")[0] == "data" for key in varies)
