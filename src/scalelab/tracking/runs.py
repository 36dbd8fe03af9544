"""MLflow runs of trainings: how they are tagged, opened, resumed and ended (named: `tracking.names`)."""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from scalelab import interrupts
from scalelab.config import Config, TrackingConfig, as_dict
from scalelab.errors import ScalelabError
from scalelab.tracking.logged_models import fail_unfinished_models
from scalelab.tracking.names import experiment_name, flatten, run_name
from scalelab.tracking.store import ensure_experiment, ensure_store, mlflow_client, resolve_uri
from scalelab.variants import VARIANT_TAG


def git_commit() -> str:
    """The current git commit, with `-dirty` if the work tree has changes; `unknown` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


@contextmanager
def training_run(
    config: Config,
    dataset_fingerprint: str,
    resume: str | None = None,
    name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[str]:
    """Open the MLflow run for training `config`, self-described; yield its id.

    `name` replaces the default `<model>-<size>-s<seed>` and `tags` are added (a trial of
    a learning-rate search is named and tagged by its rate).

    With `resume`, the id a killed training stored with its checkpoint, that run is reopened if
    it is still open (RUNNING after SIGKILL, KILLED after a signal) in this store; otherwise a
    new run is made. The run ends FINISHED; FAILED if the body raises, with the reason in the
    tag `failure.reason`; KILLED if the process is interrupted (Ctrl-C or SIGTERM, handled at a
    step boundary: see `scalelab.interrupts`). Only SIGKILL can leave it RUNNING, until resumed.
    """
    import mlflow

    uri = resolve_uri(config.tracking)
    ensure_store(uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = ensure_experiment(uri, experiment_name(config))
    resolved = as_dict(config)
    tags = {
        **(tags or {}),
        "mlflow.source.git.commit": git_commit(),
        "dataset": config.data.name,
        "dataset.fingerprint": dataset_fingerprint,
        "model.family": config.model.name,
        "size": config.model.size,
        "seed": str(config.seed),
    }
    if config.variant:  # a multirun over other settings: scalelab/variants.py
        tags[VARIANT_TAG] = config.variant
    if exp_name := os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run`
        tags["dvc.experiment"] = exp_name
    if slurm_job := slurm_job_id():
        tags["slurm.job_id"] = slurm_job
    from scalelab.tracking.sweeps import parent_tags

    tags.update(parent_tags())
    reopen = resume if resume and _is_open(uri, resume, experiment_id) else None
    name = name or run_name(config)
    start = {"run_id": reopen} if reopen else {"experiment_id": experiment_id, "run_name": name}
    with interrupts.graceful(), mlflow.start_run(**start, tags=tags) as run:
        try:
            before = mlflow.get_run(reopen).data if reopen else None
            if before and "failure.reason" in before.tags:  # KILLED by a signal, now resumed
                mlflow.delete_tag("failure.reason")
            if reopen:
                fail_unfinished_models(uri, reopen)
            logged = before.params if before else {}
            # a resumed run keeps the params it has: only runtime-only settings can differ
            mlflow.log_params({k: v for k, v in flatten(resolved).items() if k not in logged})
            mlflow.log_text(yaml.safe_dump(resolved, sort_keys=False), "config.yaml")
            yield run.info.run_id
            interrupts.check()  # a signal during model logging still ends the run KILLED
        except BaseException as err:
            signal_name = interrupts.received()
            if signal_name or isinstance(err, KeyboardInterrupt):
                reason, status = f"interrupted by {signal_name or 'SIGINT'}", "KILLED"
            else:
                reason, status = f"{type(err).__name__}: {err}", "FAILED"
            mlflow.set_tag("failure.reason", reason[:4000])
            mlflow.end_run(status)
            if status == "KILLED":  # Lightning ends a SIGTERM with SystemExit(0): not a success
                raise interrupts.Interrupted(f"{reason}; MLflow run {run.info.run_id} is KILLED") from err
            raise
    verify_recorded(uri, run.info.run_id, experiment_id)


class RunNotRecorded(ScalelabError):
    """A training ended, but its run is not where the study looks for it."""


def verify_recorded(uri: str, run_id: str, experiment_id: str) -> None:
    """Check that run `run_id` is FINISHED in experiment `experiment_id`, as the study's search
    finds it; a `RunNotRecorded` naming what the store holds instead. A job must never exit 0
    with its run missing (a fresh server once lost one: docs/when-things-go-wrong.md)."""
    client = mlflow_client(uri)
    found = client.search_runs([experiment_id], f"attributes.run_id = '{run_id}'")
    if found and found[0].info.status == "FINISHED":
        return
    try:
        info = client.get_run(run_id).info
        held = f"it is {info.status} in experiment {info.experiment_id}"
    except Exception as err:  # the store does not know the run at all
        held = f"the store does not have it ({type(err).__name__})"
    raise RunNotRecorded(
        f"MLflow run {run_id} ended but is not FINISHED in experiment {experiment_id} of {uri}: "
        f"{held}; check the tracking server, then run the same command again to record it"
    )


def slurm_job_id() -> str | None:
    """The SLURM job this process runs in, as `sacct`/`scancel` name it (`<array>_<task>`)."""
    if array := os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


def _is_open(uri: str, run_id: str, experiment_id: str) -> bool:
    """Whether run `run_id` exists in this store's experiment and never finished."""
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow_client(uri).get_run(run_id).info
    except MlflowException:
        return False
    return info.experiment_id == experiment_id and info.status in ("RUNNING", "KILLED")


CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}  # MLflow's usual words


def log_datasets(folder: Path, manifest: dict[str, Any], train_samples: int | None = None) -> None:
    """The prepared splits in `folder` as the active run's inputs: what MLflow's Dataset column
    shows and filters on (name, digest, source, context), without uploading any data.

    A data-axis run trains on a prefix of the training split: its training input is named
    `<dataset>-train-d<n>`, with a digest of its own."""
    import hashlib

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    for split, entry in manifest["splits"].items():
        name, digest = f"{manifest['dataset']}-{split}", entry["sha256"]
        if split == "train" and train_samples is not None:
            name, digest = (
                f"{name}-d{train_samples}",
                hashlib.sha256(f"{digest}:{train_samples}".encode()).hexdigest(),
            )
        with warnings.catch_warnings():  # MLflow registers its local-file source twice and says so
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(str((folder / entry["file"]).resolve()))
        # MLflow stores a digest of at most 36 characters
        _log_input(MetaDataset(source, name=name, digest=digest[:16]), CONTEXTS.get(split, split))


def _log_input(dataset: Any, context: str, attempts: int = 5) -> None:
    """`mlflow.log_input`, again when it lost a race to create the same dataset.

    MLflow 3.17's SQL store looks a dataset up, then inserts it: jobs of one sweep that log the
    same split at once can both insert, and the second fails on the table's unique key
    (`datasets.experiment_id, name, digest`). By then the dataset exists, so a retry finds it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException as err:
            text = str(err)
            if attempt == attempts - 1 or not ("UNIQUE constraint" in text or "duplicate key" in text):
                raise
            time.sleep(0.05 * (attempt + 1))


def tag_runs(tracking: TrackingConfig, tags: dict[str, dict[str, str]]) -> None:
    """Set tags on finished runs: `{run_id: {tag: value}}`."""
    client = mlflow_client(tracking)
    for run_id, run_tags in tags.items():
        for key, value in run_tags.items():
            client.set_tag(run_id, key, value)


def log_evaluation(
    tracking: TrackingConfig, run_id: str, metrics: dict[str, float], artifacts: list[Path]
) -> None:
    """Add report files, then test metrics, to the training run `run_id`: a run with test
    metrics has its whole evaluation (a sweep run again evaluates only the runs without)."""
    from mlflow.entities import Metric

    client = mlflow_client(tracking)
    for path in artifacts:
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
