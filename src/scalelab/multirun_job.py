"""How one job of a Hydra multirun ends: a failed job is reported and the sweep goes on.

Kept apart from the multirun callback (`scalelab.multirun`) so that a training stage, which wraps
its task with `survives_sweep`, does not load (or depend on) the callback's fitting code.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from scalelab import interrupts, paths

log = logging.getLogger(__name__)
JOB_OK, JOB_FAILED = "ok", "failed"


def survives_sweep(task: Callable[[DictConfig], None]) -> Callable[[DictConfig], str | None]:
    """In a multirun, report a failing job and let the others go on; elsewhere, change nothing.

    Hydra's sweepers re-raise the first failed job after its batch, which would skip the fit of
    the sizes that did finish. The failed job's MLflow run is already marked FAILED by then.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> str | None:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            task(cfg)
            return None
        try:
            task(cfg)
        except SystemExit as err:
            if err.code == interrupts.EXIT_STATUS:  # Ctrl-C or SIGTERM: stop the whole sweep
                raise
            return _failed(cfg, err)
        except Exception as err:
            return _failed(cfg, err)
        return JOB_OK

    return wrapper


def _failed(cfg: DictConfig, err: BaseException) -> str:
    samples = cfg.data.get("train_samples")
    key = paths.run_key(str(cfg.model.size), int(cfg.seed), None if samples is None else int(samples))
    log.error("sweep job %s failed: %s: %s", key, type(err).__name__, err)
    return JOB_FAILED
