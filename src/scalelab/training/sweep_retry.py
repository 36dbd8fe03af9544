"""A stopped or failed sweep, run again, finishes what it started: a job whose run already
FINISHED in one of the sweep's earlier tries is adopted by the new try, not trained again.

However often a sweep's workers are killed, every rung and seed ends with exactly one FINISHED
run (docs/when-things-go-wrong.md measures it). A run counts as finished before when its reports
and checkpoint are there, it was trained from the same identity (`resume.identity`: model,
optimisation, data, seed), it is FINISHED in the study's experiment, and the sweep that made it
did not complete (it was stopped, failed, or ended with runs missing): a sweep that completed,
run again, trains again, and its runs stay with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalelab import paths
from scalelab.config import Config
from scalelab.data.split_files import read_manifest
from scalelab.readback import read_json
from scalelab.tracking import sweeps
from scalelab.tracking.store import mlflow_client
from scalelab.training import resume
from scalelab.training.saved import CHECKPOINT_FILE

RUN_FILE = "run.json"
EVALUATED_METRIC = "test/loss"  # logged after the evaluation's files: its presence means complete


@dataclass(frozen=True)
class Finished:
    """A run an earlier try of the sweep finished."""

    run_id: str
    run_ids: list[str]  # the run and, after a learning-rate search, its trials
    val_loss: float


def identity_digest(config: Config) -> str:
    """The digest of what decides the weights of `config`'s run (budgets already resolved)."""
    manifest = read_manifest(paths.prepared_dir(config.data.name))
    ident = resume.identity(config.model, config.trainer, manifest, config.seed, config.data.train_samples)
    return resume.digest(ident)


def _reports(config: Config):
    size, seed, samples, variant = config.model.size, config.seed, config.data.train_samples, config.variant
    return paths.train_reports(size, seed, samples=samples, variant=variant), paths.model_dir(
        size, seed, samples, variant
    )


def finished_before(config: Config) -> Finished | None:
    """The run of `config` an earlier, unfinished try of its sweep finished; None if there is none."""
    from mlflow.exceptions import MlflowException

    reports, model = _reports(config)
    if not (reports / RUN_FILE).is_file() or not (model / CHECKPOINT_FILE).is_file():
        return None
    run = read_json(reports / RUN_FILE, ["run_id"])
    if run.get("identity") != identity_digest(config):
        return None
    client = mlflow_client(config.tracking)
    try:
        found = client.get_run(run["run_id"])
        parent = found.data.tags.get(sweeps.PARENT_TAG)
        if parent is None or _complete(client.get_run(parent)):
            return None
    except MlflowException:  # a run of another store (or deleted): train again
        return None
    if found.info.status != "FINISHED" or found.info.experiment_id != sweeps.experiment_id(config):
        return None
    val_loss = read_json(reports / "train_metrics.json", ["val/loss"])["val/loss"]
    trials = [str(trial) for trial in run.get("trial_run_ids", [])]
    return Finished(run["run_id"], [run["run_id"], *trials], float(val_loss))


def _complete(sweep_parent) -> bool:
    """Whether a sweep ended with every run it launched (FINISHED, none missing)."""
    return sweep_parent.info.status == "FINISHED" and sweeps.MISSING_TAG not in sweep_parent.data.tags


def evaluated(config: Config) -> bool:
    """Whether the run that `config`'s reports name already holds its test metrics."""
    reports, _ = _reports(config)
    run_id = read_json(reports / RUN_FILE, ["run_id"])["run_id"]
    return EVALUATED_METRIC in mlflow_client(config.tracking).get_run(run_id).data.metrics
