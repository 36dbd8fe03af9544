"""Hydra multirun callback: a sweep becomes one MLflow parent run, evaluated children and a fit.

`python -m pipelines.train -m model.size=xs,s,m [seed=0,1,2] [data.train_samples=1000,4000]
[hydra/launcher=joblib]`:
before the jobs start, the parent run (and the MLflow store) is created once; each job trains
(pipelines/train.py) and, when it succeeded, evaluates its checkpoint here, in its own worker;
after the last job, the finished children are fitted and the study goes to the parent run and
to `reports/sweeps/<sweep.name>/`. A job that fails leaves a FAILED child; the fit names it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from scalelab import paths
from scalelab.config import Config, load_config
from scalelab.errors import ConfigError
from scalelab.gc_tuning import release_collection
from scalelab.multirun_job import JOB_OK
from scalelab.tracking import sweeps

log = logging.getLogger(__name__)
# Results live at models/<size>[/d<train_samples>]/s<seed>: nothing else may vary in one sweep.
SWEPT_KEYS = {"model.size", "seed", "data.train_samples"}


def _task_config(config: DictConfig) -> Config:
    return load_config({k: v for k, v in config.items() if k != "hydra"})


@dataclass(frozen=True)
class Swept:
    """The axes a multirun's command-line sweep launches (every combination of them)."""

    sizes: list[str]
    seeds: list[int]
    data_sizes: list[int | None]


def swept_runs(config: DictConfig) -> Swept:
    """The sizes, seeds and training-set sizes of the multirun's command-line sweep."""
    values: dict[str, list[Any]] = {
        "model.size": [config.model.size],
        "seed": [config.seed],
        "data.train_samples": [config.data.get("train_samples")],
    }
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        key = override.get_key_element()
        if not override.is_sweep_override():
            continue
        if key not in SWEPT_KEYS:
            raise ConfigError(
                f"{key} is swept, but a study may only vary model.size, data.train_samples and "
                f"seed (results are stored per <size>/d<train_samples>/s<seed>); search learning "
                f"rates with trainer.lr_search=[...], sweep other axes with dvc exp run --queue -S"
            )
        values[key] = list(override.sweep_iterator())
    return Swept(
        sizes=[str(size) for size in values["model.size"]],
        seeds=[int(seed) for seed in values["seed"]],
        data_sizes=[None if v is None else int(v) for v in values["data.train_samples"]],
    )


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
        swept = swept_runs(config)
        out = paths.REPORTS / "sweeps" / task.sweep.name
        runs = collect(swept.sizes, swept.seeds, finished=finished, data_sizes=swept.data_sizes)
        study, champion = conclude(task, runs, out, parent)
        print(f"sweep {task.sweep.name}: {study.verdict.headline()}")
        print(champion)
        for note in study.notes:
            log.warning("sweep %s: %s", task.sweep.name, note)
        fitted = len(study.records)
        print(f"sweep {task.sweep.name}: {fitted} runs fitted, report in {out}/, parent run {parent}")
        return study.missing
