"""The Lightning callbacks and loggers a user adds by config: `callbacks=lr_monitor`,
`logger=csv`, or their own `_target_`s (conf/callbacks/, conf/logger/).

Each entry is instantiated by Hydra, with `{run}` in any of its strings replaced by the run's
name (`mlp-m-s0`), so that each run's files get their own place: the CSV logger's
`version: "{run}"` gives `logs/csv/mlp-m-s0/metrics.csv`. (Not `${seed}`: a DVC rung stage
trains all its seeds from one composed config.) Loggers receive every epoch's train/* and val/*
(`Classifier._log_epoch`); callbacks see them in `trainer.callback_metrics`.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from scalelab.errors import ConfigError, MissingExtra


def callbacks(specs: dict[str, Any], run: str) -> list[pl.Callback]:
    """`callbacks.*` as Lightning callbacks for run `run`, in the order the config lists them."""
    return [_instantiate("callbacks", name, _fill(spec, run)) for name, spec in specs.items()]


def loggers(specs: dict[str, Any], run: str) -> list[Any]:
    """`logger.*` as Lightning loggers for run `run`."""
    return [_instantiate("logger", name, _fill(spec, run)) for name, spec in specs.items()]


def _fill(spec: Any, run: str) -> Any:
    """`spec` with "{run}" replaced by `run` in every string, at any depth."""
    if isinstance(spec, dict):
        return {key: _fill(value, run) for key, value in spec.items()}
    if isinstance(spec, list):
        return [_fill(value, run) for value in spec]
    return spec.replace("{run}", run) if isinstance(spec, str) else spec


def _instantiate(group: str, name: str, spec: dict[str, Any]) -> Any:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(spec)
    except InstantiationException as err:
        cause = err.__cause__ or err
        if isinstance(cause, ModuleNotFoundError) and "tensorboard" in str(cause).lower():
            raise MissingExtra(
                f"{group}.{name} needs tensorboardX, which is not installed: pip install -e '.[tensorboard]'"
            ) from None
        raise ConfigError(f"{group}.{name} cannot be made: {type(cause).__name__}: {cause}") from None
