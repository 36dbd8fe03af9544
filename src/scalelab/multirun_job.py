"""How one job of a Hydra multirun runs: named by its variant, and a failed job is reported while
the sweep goes on.

Kept apart from the multirun callback (`scalelab.multirun`) so that a training stage, which wraps
its task with `survives_sweep`, does not load (or depend on) the callback's fitting code.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from scalelab import interrupts, paths, variants

log = logging.getLogger(__name__)
JOB_FAILED = "failed"  # a failed job's return value; a finished one returns its validation loss


def succeeded(return_value: Any) -> bool:
    """Whether a job's return value is that of a job that trained (a number, the objective of a
    hyperparameter search)."""
    return isinstance(return_value, int | float) and not isinstance(return_value, bool)


def job_variant(cfg: DictConfig, overrides: list[str]) -> str:
    """The variant (`scalelab.variants`) of the multirun job with config `cfg` and command-line
    `overrides`; a `variant=` the user set comes first."""
    given = str(cfg.get("variant", ""))
    varies = variants.announced()
    named = variants.of_overrides(overrides, varies) if varies else ""
    return ",".join(part for part in (given, named) if part)


def with_variant(cfg: DictConfig) -> DictConfig:
    """`cfg` with its job's variant filled in."""
    variant = job_variant(cfg, list(HydraConfig.get().overrides.task))
    if variant:
        with open_dict(cfg):
            cfg.variant = variant
    return cfg


def survives_sweep(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """In a multirun, name the job's variant, report a failing job and let the others go on;
    elsewhere, change nothing.

    Hydra's sweepers re-raise the first failed job after its batch, which would skip the fit of
    the sizes that did finish. The failed job's MLflow run is already marked FAILED by then.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return task(cfg)
        try:
            return task(with_variant(cfg))
        except SystemExit as err:
            if err.code == interrupts.EXIT_STATUS:  # Ctrl-C or SIGTERM: stop the whole sweep
                raise
            return _failed(cfg, err)
        except Exception as err:
            return _failed(cfg, err)

    return wrapper


def _failed(cfg: DictConfig, err: BaseException) -> str:
    samples = cfg.data.get("train_samples")
    key = paths.run_key(
        str(cfg.model.size),
        int(cfg.seed),
        None if samples is None else int(samples),
        job_variant(cfg, list(HydraConfig.get().overrides.task)),
    )
    log.error("sweep job %s failed: %s: %s", key, type(err).__name__, err)
    return JOB_FAILED
