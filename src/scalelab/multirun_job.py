"""How one job of a Hydra multirun runs: named by its variant, a failed job reported while the
sweep goes on, and a stopped sweep's jobs ended (scalelab/sweep_stop.py).

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

from scalelab import interrupts, paths, sweep_stop, variants

log = logging.getLogger(__name__)
JOB_FAILED = "failed"  # a failed job's return value; a finished one returns its validation loss
JOB_STOPPED = "stopped"  # a job its sweep's stop ended (or never started)


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
    """In a multirun, name the job's variant, report a failing job and let the others go on, and
    end at once if the sweep was stopped; elsewhere, change nothing.

    Hydra's sweepers re-raise the first failed job after its batch, which would skip the fit of
    the sizes that did finish. The failed job's MLflow run is already marked FAILED by then.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        hydra = HydraConfig.get()
        if hydra.mode != RunMode.MULTIRUN:
            return task(cfg)
        sweep_stop.worker_started()
        if reason := sweep_stop.stopped(hydra.sweep.dir):
            log.warning("sweep job %s not started: the sweep was stopped by %s", _key(cfg), reason)
            return JOB_STOPPED
        try:
            return task(with_variant(cfg))
        except SystemExit as err:
            if err.code != interrupts.EXIT_STATUS:
                return _failed(cfg, err)
            # Ctrl-C or SIGTERM: in the command's own process, it stops the whole sweep
            if sweep_stop.in_command_process():
                sweep_stop.mark(hydra.sweep.dir, interrupts.last() or "a signal")
            if sweep_stop.stopped(hydra.sweep.dir):
                return JOB_STOPPED
            raise  # a job stopped on its own, not its sweep (a cancelled SLURM job): it failed
        except Exception as err:
            return _failed(cfg, err)

    return wrapper


def _key(cfg: DictConfig) -> str:
    samples = cfg.data.get("train_samples")
    return paths.run_key(
        str(cfg.model.size),
        int(cfg.seed),
        None if samples is None else int(samples),
        job_variant(cfg, list(HydraConfig.get().overrides.task)),
    )


def _failed(cfg: DictConfig, err: BaseException) -> str:
    log.error("sweep job %s failed: %s: %s", _key(cfg), type(err).__name__, err)
    return JOB_FAILED
