"""A sweep in MLflow: one parent run per study, the trained models as its children, the fit on it.

Multiruns create the parent before the jobs start and hand its id to them through the
environment (`SWEEP_PARENT_ENV`; Hydra's launchers pass it to every job). `dvc repro` trains the
rungs as separate stages, so its scaling stage creates the parent and adopts the runs after.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from scalelab.config import Config, as_dict
from scalelab.tracking.names import experiment_name, flatten
from scalelab.tracking.store import ensure_experiment, mlflow_client, resolve_uri

SWEEP_PARENT_ENV = "SCALELAB_SWEEP_PARENT_RUN_ID"
PARENT_TAG = "mlflow.parentRunId"  # what the MLflow UI nests runs by
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI (Markdown)
MISSING_TAG = "sweep.missing"  # the runs a finished sweep fitted without


def _client(config: Config):
    return mlflow_client(config.tracking)  # a sweep's parent may be the first to touch a fresh store


def experiment_id(config: Config) -> str:
    """The study's experiment, created if needed (do this once, before jobs fan out)."""
    return ensure_experiment(resolve_uri(config.tracking), experiment_name(config))


def start_parent(
    config: Config, launcher: str, tags: dict[str, str] | None = None, start_time: int | None = None
) -> str:
    """Open the parent run of a sweep named `sweep.name`; its run id is the sweep id.

    `start_time` (ms since the epoch) backdates it, for a parent made after its runs."""
    client = _client(config)
    tags = {
        "sweep.launcher": launcher,
        "dataset": config.data.name,
        "model.family": config.model.name,
        **(tags or {}),
    }
    name = config.sweep.name
    if exp_name := os.environ.get("DVC_EXP_NAME"):  # one study per queued DVC experiment
        tags["dvc.experiment"] = exp_name
        name = f"{name}-{exp_name}"
    run = client.create_run(experiment_id(config), start_time=start_time, run_name=name, tags=tags)
    run_id = run.info.run_id
    client.set_tag(run_id, "sweep_id", run_id)
    client.log_batch(run_id, params=_params(flatten({"sweep": as_dict(config.sweep)})))
    return run_id


def study_parent(config: Config, run_ids: list[str]) -> str:
    """The parent of the `dvc repro` study made of `run_ids`, reopened to take a new fit.

    DVC reruns the scaling stage whenever a rung's reports or the fit's code change. When the
    trained runs and the sweep's settings are the same as last time, the study is the same: its
    parent is reused rather than a new one made, which would take its children and leave an
    empty twin in the MLflow UI. Otherwise a new parent adopts the runs.
    """
    client = _client(config)
    identity = {
        "runs": sorted(run_ids),
        "sweep": as_dict(config.sweep),
        "dvc": os.environ.get("DVC_EXP_NAME"),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    same = client.search_runs(
        [experiment_id(config)],
        filter_string=f"tags.`sweep.launcher` = 'dvc' and tags.`sweep.study` = '{key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if same:
        client.update_run(same[0].info.run_id, status="RUNNING")
        return same[0].info.run_id
    # made after its runs trained: it starts when the first of them did, so that its duration in
    # the MLflow UI is the study's, not the fit's few seconds
    first = min((client.get_run(run_id).info.start_time for run_id in run_ids), default=None)
    parent = start_parent(config, launcher="dvc", tags={"sweep.study": key}, start_time=first)
    adopt(config, parent, run_ids)
    return parent


def _params(flat: dict[str, str]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, v) for k, v in flat.items()]


def parent_tags() -> dict[str, str]:
    """Tags that hang a training run under the current sweep's parent, if there is one."""
    parent = os.environ.get(SWEEP_PARENT_ENV)
    return {PARENT_TAG: parent, "sweep_id": parent} if parent else {}


def adopt(config: Config, parent_id: str, run_ids: list[str]) -> None:
    """Hang existing runs under `parent_id` (used after `dvc repro` trained them stage by stage)."""
    client = _client(config)
    for run_id in run_ids:
        client.set_tag(run_id, PARENT_TAG, parent_id)
        client.set_tag(run_id, "sweep_id", parent_id)


def children(config: Config, parent_id: str) -> list[Any]:
    """The runs under `parent_id`."""
    client = _client(config)
    return client.search_runs([experiment_id(config)], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'")


def fail_unfinished(config: Config, parent_id: str) -> list[str]:
    """Mark FAILED the children still open after every job of the sweep ended; return their ids.

    A job killed from outside (SIGKILL, `scancel`, a time limit, a lost node) cannot close its
    run. The reason goes to the tag `failure.reason`; its checkpoint stays, so running the sweep
    again resumes the training (into a new run that carries the whole metric history).
    """
    client = _client(config)
    failed = []
    for run in children(config, parent_id):
        if run.info.status not in ("RUNNING", "KILLED"):
            continue
        before = run.data.tags.get("failure.reason", "killed")
        reason = f"its sweep job ended without finishing it ({before}); run the sweep again to resume"
        client.set_tag(run.info.run_id, "failure.reason", reason)
        client.set_terminated(run.info.run_id, "FAILED")
        failed.append(run.info.run_id)
    return failed


def kill_unfinished(config: Config, parent_id: str, reason: str) -> list[str]:
    """A stopped sweep: end its children still RUNNING, and its parent, KILLED with `reason`
    (tag `failure.reason`); return the names of its KILLED children."""
    client = _client(config)
    killed = []
    for run in children(config, parent_id):
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, "failure.reason", reason)
            client.set_terminated(run.info.run_id, "KILLED")
        if run.info.status in ("RUNNING", "KILLED"):
            killed.append(run.info.run_name)
    client.set_tag(parent_id, "failure.reason", reason)
    client.set_terminated(parent_id, "KILLED")
    return sorted(killed)


def finish_parent(
    config: Config,
    parent_id: str,
    summary: dict[str, Any],
    note: str,
    files: list[Path],
    status: str = "FINISHED",
    root: Path | None = None,
) -> None:
    """Log the fit's numbers, description and files to the parent run and close it. With `root`,
    each file goes to the artifact folder of its path under `root` (a variant's study to
    `<variant>/`); without, plots go to `scaling/` and the rest to the top."""
    from mlflow.entities import Metric

    client = _client(config)
    numbers = _numbers(summary)
    now = int(time.time() * 1000)
    client.log_batch(parent_id, metrics=[Metric(k, v, now, 0) for k, v in numbers.items()])
    client.set_tag(parent_id, NOTE_TAG, note)
    if "credible" in summary:  # searchable: tags.`scaling.credible` = 'false'
        client.set_tag(parent_id, "scaling.credible", str(summary["credible"]).lower())
    if summary.get("missing"):
        client.set_tag(parent_id, MISSING_TAG, ", ".join(summary["missing"]))
    for path in files:
        if root is not None:
            folder = path.parent.relative_to(root).as_posix()
            artifact_path = None if folder == "." else folder
        else:
            artifact_path = "scaling" if path.suffix == ".png" else None
        client.log_artifact(parent_id, str(path), artifact_path=artifact_path)
    client.set_terminated(parent_id, status)


def tag(config: Config, run_id: str, tags: dict[str, str]) -> None:
    """Set `tags` on run `run_id`."""
    client = _client(config)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def close(config: Config, run_id: str, status: str) -> None:
    """End a run with `status` (FINISHED, FAILED or KILLED)."""
    _client(config).set_terminated(run_id, status)


def _numbers(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a nested summary, named `a/b/c` (lists, text and nulls left out)."""
    found: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found.update(_numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found[f"{prefix}{key}"] = float(value)
    return found
