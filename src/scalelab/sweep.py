"""Hydra multirun callback: a sweep becomes one MLflow parent run, evaluated children and a fit.

`python -m pipelines.train -m model.size=xs,s,m [seed=0,1,2] [hydra/launcher=joblib]`:
before the jobs start, the parent run (and the MLflow store) is created once; each job trains
(pipelines/train.py) and, when it succeeded, evaluates its checkpoint here, in its own worker;
after the last job, the finished children are fitted and the study goes to the parent run and
to `reports/sweeps/<sweep.name>/`. A job that fails leaves a FAILED child; the fit names it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from scalelab import paths
from scalelab.config import Config, load_config
from scalelab.errors import ConfigError
from scalelab.process import release_collection
from scalelab.sweep_job import JOB_OK
from scalelab.tracking import sweeps

log = logging.getLogger(__name__)
SWEPT_KEYS = {"model.size", "seed"}  # results live at models/<size>/s<seed>: nothing else may vary


def _task_config(config: DictConfig) -> Config:
    return load_config({k: v for k, v in config.items() if k != "hydra"})


def swept_runs(config: DictConfig) -> tuple[list[str], list[int]]:
    """The sizes and seeds the multirun's command-line sweep launches (every pair of them)."""
    values: dict[str, list[Any]] = {"model.size": [config.model.size], "seed": [config.seed]}
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        key = override.get_key_element()
        if not override.is_sweep_override():
            continue
        if key not in SWEPT_KEYS:
            raise ConfigError(
                f"{key} is swept, but a size sweep may only vary model.size and seed (results "
                f"are stored per <size>/s<seed>); search learning rates with "
                f"trainer.lr_search=[...], sweep other axes with dvc exp run --queue -S"
            )
        values[key] = list(override.sweep_iterator())
    return [str(size) for size in values["model.size"]], [int(seed) for seed in values["seed"]]


def _check_processes(task: Config, launcher: str, launcher_cfg: DictConfig) -> None:
    """Refuse DDP jobs a launcher cannot run: Lightning starts DDP's extra processes by running
    the command again, which in a local multirun would run the whole sweep again. On SLURM each
    job's processes are its tasks (srun starts them), one per device."""
    devices = task.trainer.devices
    if devices == 1:
        return
    if launcher != "SlurmLauncher":
        raise ConfigError(
            f"trainer.devices={devices} in a local multirun: DDP would start the whole sweep again "
            f"in each extra process; run the sizes one by one (or queued with dvc exp run --queue), "
            f"or sweep on SLURM with hydra/launcher=slurm hydra.launcher.tasks_per_node={devices}"
        )
    if launcher_cfg.get("tasks_per_node") != devices:
        raise ConfigError(
            f"hydra.launcher.tasks_per_node={launcher_cfg.get('tasks_per_node')} with "
            f"trainer.devices={devices}: on SLURM each DDP process is a task; set them equal"
        )


class SweepCallback(Callback):
    """Opens the sweep's parent run, evaluates each finished job, fits the law at the end."""

    # Hydra turns an Exception raised by a callback into a warning and carries on, so refusals
    # and failures here leave as SystemExit, which it lets through.

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        release_collection()  # the parent's start-up is over; with workers it runs no task itself
        launcher = str(config.hydra.launcher.get("_target_", "")).rsplit(".", 1)[-1]
        try:
            swept_runs(config)  # refuse a sweep over other axes before any job starts
            task = _task_config(config)
            if task.all_seeds:
                raise ConfigError(
                    "all_seeds=true trains every seed in one process (DVC's rung stages); a "
                    "multirun sweeps seeds as jobs: drop all_seeds and sweep seed=0,1,2"
                )
            _check_processes(task, launcher, config.hydra.launcher)
        except ConfigError as err:
            raise SystemExit(f"scalelab: error: {err}") from None
        os.environ[sweeps.SWEEP_PARENT_ENV] = sweeps.start_parent(task, launcher)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if sweeps.SWEEP_PARENT_ENV not in os.environ:  # a single run: `evaluate` is its own stage
            return
        from pytorch_lightning.utilities import rank_zero_only

        if rank_zero_only.rank != 0:  # a DDP task of a SLURM job: rank zero evaluates
            return
        if job_return.status != JobStatus.COMPLETED or job_return.return_value != JOB_OK:
            return
        from scalelab.evaluation import evaluate_run

        evaluate_run(_task_config(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        parent = os.environ.pop(sweeps.SWEEP_PARENT_ENV)
        task = _task_config(config)
        sweeps.fail_unfinished(task, parent)
        from scalelab.scaling.flow import NoRunFinished

        try:
            missing = self._fit(config, task, parent)
        except NoRunFinished as err:
            sweeps.close(task, parent, "FAILED")
            raise SystemExit(
                f"sweep {task.sweep.name}: {err}; see their FAILED runs in MLflow, or the errors above"
            ) from None
        except BaseException as err:
            sweeps.close(task, parent, "FAILED")
            raise SystemExit(f"sweep {task.sweep.name}: the fit failed: {err!r}") from err
        if missing:
            raise SystemExit(
                f"sweep {task.sweep.name}: {', '.join(missing)} did not finish (see their FAILED "
                f"runs in MLflow); the fit was made without them"
            )

    @staticmethod
    def _fit(config: DictConfig, task: Config, parent: str) -> list[str]:
        from scalelab.scaling.flow import conclude
        from scalelab.scaling.study import collect

        finished = {run.info.run_id for run in sweeps.children(task, parent) if run.info.status == "FINISHED"}
        sizes, seeds = swept_runs(config)
        out = paths.REPORTS / "sweeps" / task.sweep.name
        study, champion = conclude(task, collect(sizes, seeds, finished=finished), out, parent)
        print(f"sweep {task.sweep.name}: {study.verdict.headline()}")
        print(champion)
        for note in study.notes:
            log.warning("sweep %s: %s", task.sweep.name, note)
        fitted = len(study.records)
        print(f"sweep {task.sweep.name}: {fitted} runs fitted, report in {out}/, parent run {parent}")
        return study.missing
