"""Hydra multirun callback: a sweep becomes one MLflow parent run, evaluated children and a fit.

`python -m pipelines.train -m model.size=xs,s,m [seed=0,1,2] [data.train_samples=1000,4000 |
data.compute_budget=1e9,1e10] [trainer.lr=1e-3,3e-3 …] [hydra/launcher=joblib]`:
before the jobs start, the parent run (and the MLflow store) is created once; each job trains
(pipelines/train.py) and, when it succeeded, evaluates its checkpoint here, in its own worker;
after the last job, the finished children are fitted and the study goes to the parent run and
to `reports/sweeps/<sweep.name>/`. A job that fails leaves a FAILED child; the fit names it.

Any other swept setting (on the command line or in `hydra.sweeper.params`, as an Optuna search
of conf/hparams_search/ sweeps) makes variants (`scalelab.variants`): each variant's runs get
their own paths and their own law, in `reports/sweeps/<sweep.name>/<variant>/`, and the sweep's
champion is the best run of all.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from scalelab import interrupts, sweep_stop, variants
from scalelab.config import Config, load_config
from scalelab.errors import ConfigError
from scalelab.gc_tuning import release_collection
from scalelab.multirun_job import job_variant, succeeded
from scalelab.tracking import sweeps
from scalelab.tracking.names import SWEEP_EXPERIMENT_ENV, experiment_name

log = logging.getLogger(__name__)


def _task_config(config: DictConfig) -> Config:
    return load_config({k: v for k, v in config.items() if k != "hydra"})


@dataclass(frozen=True)
class Swept:
    """What a multirun sweeps: the study's axes (every combination of them is launched, unless
    a search picks its own) and the other keys, which make variants."""

    sizes: list[str]
    seeds: list[int]
    data_sizes: list[int | None]
    budgets: list[float]  # data.compute_budget's values; [] without the axis
    varies: list[str]


def swept_runs(config: DictConfig) -> Swept:
    """The sizes, seeds, training-set sizes (or budgets) and other swept keys of a multirun: those of
    `hydra.sweeper.params`, then of the command line (which wins for a key in both)."""
    values: dict[str, list[Any]] = {
        "model.size": [config.model.size],
        "seed": [config.seed],
        "data.train_samples": [config.data.get("train_samples")],
        "data.compute_budget": [config.data.get("compute_budget")],
    }
    params = config.hydra.sweeper.get("params") or {}
    lines = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    varies = []
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        if not override.is_sweep_override():
            continue
        if key not in variants.AXES:
            varies.append(key)
            continue
        try:
            values[key] = list(override.sweep_iterator())
        except Exception:  # an interval: a search would draw sizes or seeds no one can list
            raise ConfigError(
                f"{override.input_line}: {key} is one of the study's axes; sweep it over a list of "
                f"values (e.g. {key}=choice(...) or a,b,c), not an interval"
            ) from None
    return Swept(
        sizes=[str(size) for size in values["model.size"]],
        seeds=[int(seed) for seed in values["seed"]],
        data_sizes=[None if v is None else int(v) for v in values["data.train_samples"]],
        budgets=[float(v) for v in values["data.compute_budget"] if v is not None],
        varies=sorted(set(varies)),
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
            swept = swept_runs(config)  # refuse a sweep it cannot store before any job starts
            task = _task_config(config)
            if task.all_seeds:
                raise ConfigError(
                    "all_seeds=true trains every seed in one process (DVC's rung stages); a "
                    "multirun sweeps seeds as jobs: drop all_seeds and sweep seed=0,1,2"
                )
            _check_processes(task, launcher, config.hydra.launcher)
        except ConfigError as err:
            raise SystemExit(f"scalelab: error: {err}") from None
        # every job logs to the sweep's experiment, even one that sweeps data= or model=
        os.environ[SWEEP_EXPERIMENT_ENV] = experiment_name(task)
        if swept.varies:
            variants.announce(swept.varies)
        os.environ[sweeps.SWEEP_PARENT_ENV] = sweeps.start_parent(task, launcher)
        # a SIGTERM or SIGINT to this command stops every job (a SLURM array's jobs are
        # stopped by scancel, each one on its own)
        self._restore_signals = (
            (lambda: None)
            if launcher == "SlurmLauncher"
            else sweep_stop.forward_signals(config.hydra.sweep.dir)
        )
        atexit.register(self._abandoned, task, str(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if sweeps.SWEEP_PARENT_ENV not in os.environ:  # a single run: `evaluate` is its own stage
            return
        from pytorch_lightning.utilities import rank_zero_only

        if rank_zero_only.rank != 0:  # a DDP task of a SLURM job: rank zero evaluates
            return
        if job_return.status != JobStatus.COMPLETED or not succeeded(job_return.return_value):
            return
        from scalelab import compute_budget
        from scalelab.evaluation import evaluate_run
        from scalelab.training.sweep_retry import evaluated

        task = _task_config(config)
        job = dataclasses.replace(task, variant=job_variant(config, list(config.hydra.overrides.task)))
        if not evaluated(compute_budget.resolve(job)):  # not yet, in an earlier try of the sweep
            evaluate_run(job)

    def _abandoned(self, task: Config, sweep_dir: str) -> None:
        """The command exits before its sweep ended (the launcher raised: a worker killed
        outright, say, or a second signal): end the parent and its open children rather than
        leave them RUNNING."""
        parent = os.environ.pop(sweeps.SWEEP_PARENT_ENV, None)
        if parent is None:
            return
        signalled = sweep_stop.stopped(sweep_dir)
        self._restore_signals()
        reason = f"stopped at once after {signalled}" if signalled else "its command failed"
        try:
            sweeps.fail_unfinished(task, parent)
            sweeps.tag(task, parent, {"failure.reason": f"{reason} before its jobs ended"})
            sweeps.close(task, parent, "KILLED" if signalled else "FAILED")
        except Exception as err:  # the command is exiting anyway: say so, do not hide its error
            log.warning("sweep %s: could not close its parent run %s: %s", task.sweep.name, parent, err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.unregister(self._abandoned)
        try:
            self._conclude(config)
        finally:
            variants.withdraw()
            os.environ.pop(SWEEP_EXPERIMENT_ENV, None)

    def _conclude(self, config: DictConfig) -> None:
        parent = os.environ.pop(sweeps.SWEEP_PARENT_ENV)
        task = _task_config(config)
        reason = sweep_stop.stopped(config.hydra.sweep.dir)
        self._restore_signals()  # and clears the stop mark
        if reason:
            killed = sweeps.kill_unfinished(task, parent, f"its sweep was stopped by {reason}")
            print(
                f"scalelab: sweep {task.sweep.name} stopped by {reason}: "
                f"{', '.join(killed) or 'no run'} ended KILLED, nothing was fitted; run the same "
                f"command again to resume from their checkpoints",
                file=sys.stderr,
            )
            raise SystemExit(interrupts.EXIT_STATUS)
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
        from scalelab import paths
        from scalelab.scaling.flow import (
            VARIANTS_FILE,
            conclude,
            conclude_variants,
            variant_studies,
        )
        from scalelab.scaling.study import collect

        children = sweeps.children(task, parent)
        finished = {run.info.run_id for run in children if run.info.status == "FINISHED"}
        swept = swept_runs(config)
        out = paths.REPORTS / "sweeps" / task.sweep.name
        if swept.varies:
            comparable = not variants.differs_in_data(swept.varies)
            studies, champion = conclude_variants(
                task, variant_studies(task, children, finished), out, parent, comparable
            )
            for variant, study in studies.items():
                outcome = f"{len(study.records)} runs"
                if scored := [r.val_loss for r in study.records]:
                    outcome += f", best val/loss {min(scored):.4f}"
                if len(study.rungs) >= 3:
                    outcome += f"; {study.verdict.headline()}"
                print(f"sweep {task.sweep.name} [{variant}]: {outcome}")
            print(champion)
            print(f"sweep {task.sweep.name}: variants in {out}/{VARIANTS_FILE}, parent run {parent}")
            return [key for study in studies.values() for key in study.missing]
        cells: list[int | None] | dict[str, list[int | None]] = swept.data_sizes
        if swept.budgets:
            from scalelab.compute_budget import samples_by_size

            cells = samples_by_size(task, swept.sizes, swept.budgets)  # type: ignore[assignment]
        runs = collect(swept.sizes, swept.seeds, finished=finished, data_sizes=cells)
        study, champion = conclude(task, runs, out, parent)
        print(f"sweep {task.sweep.name}: {study.verdict.headline()}")
        print(champion)
        for note in study.notes:
            log.warning("sweep %s: %s", task.sweep.name, note)
        fitted = len(study.records)
        print(f"sweep {task.sweep.name}: {fitted} runs fitted, report in {out}/, parent run {parent}")
        return study.missing
