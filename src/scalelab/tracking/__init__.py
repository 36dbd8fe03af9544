"""MLflow: where runs go, how they are named and tagged, and what each stage logs to them.

Importing this module turns MLflow's usage telemetry off unless the user opted in by setting
MLFLOW_DISABLE_TELEMETRY themselves: nothing leaves the machine by default.
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from scalelab import interrupts
from scalelab.config import Config, TrackingConfig, as_dict
from scalelab.errors import ScalelabError

DEFAULT_URI = "sqlite:///mlflow.db"


def resolve_uri(cfg: TrackingConfig) -> str:
    """`tracking.uri`, else $MLFLOW_TRACKING_URI, else `mlflow.db` in the project root.

    Under DVC the project root is $DVC_ROOT, which DVC points at the real repository even for
    queued experiments that run in a throwaway copy under .dvc/tmp/exps/: their runs land in
    the same store as everything else instead of vanishing with the copy.
    """
    if cfg.uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return cfg.uri or os.environ["MLFLOW_TRACKING_URI"]
    root = os.environ.get("DVC_ROOT")
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}" if root else DEFAULT_URI


_ENSURED: set[str] = set()  # URIs ensure_store has checked in this process


def ensure_store(uri: str) -> None:
    """Check the store can be reached before any work; create a SQLite store once, under a lock.

    A server that does not answer, or a SQLite path that cannot be written, is a
    `ScalelabError` now rather than a crash after an hour of training. Concurrent first writers
    corrupt a fresh SQLite store, hence the file lock.
    """
    if uri in _ENSURED:  # once per process: a sweep's parent asks for a client many times
        return
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    if not uri.startswith("sqlite:///"):
        _ENSURED.add(uri)
        return
    from filelock import FileLock
    from mlflow import MlflowClient

    db = Path(uri.removeprefix("sqlite:///"))
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{db}.lock", timeout=120):
            MlflowClient(uri).search_experiments(max_results=1)  # creates and migrates the schema
        _ENSURED.add(uri)
    except OSError as err:
        raise ScalelabError(
            f"MLflow store {uri} cannot be written ({err.strerror or err}); point tracking.uri "
            "(or MLFLOW_TRACKING_URI) at a writable path or a server"
        ) from None


def _check_server(uri: str, timeout: float = 10.0) -> None:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ScalelabError(
            f"MLflow server {uri} is unreachable ({reason}); start it, or point tracking.uri "
            "(or MLFLOW_TRACKING_URI) elsewhere"
        ) from None


def experiment_name(config: Config) -> str:
    """One experiment per study: `tracking.experiment`, else `<data>-<model>`."""
    return config.tracking.experiment or f"{config.data.name}-{config.model.name}"


def run_name(config: Config) -> str:
    """`<model>-<size>-s<seed>`, e.g. `mlp-l-s0`: the runs table reads like the ladder."""
    return f"{config.model.name}-{config.model.size}-s{config.seed}"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> `{"model.ladder.xs.width": "4", ...}` for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


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
def training_run(config: Config, dataset_fingerprint: str, resume: str | None = None) -> Iterator[str]:
    """Open the MLflow run for training `config`, self-described; yield its id.

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
        "mlflow.source.git.commit": git_commit(),
        "dataset": config.data.name,
        "dataset.fingerprint": dataset_fingerprint,
        "model.family": config.model.name,
        "size": config.model.size,
        "seed": str(config.seed),
    }
    if exp_name := os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run`
        tags["dvc.experiment"] = exp_name
    if slurm_job := slurm_job_id():
        tags["slurm.job_id"] = slurm_job
    from scalelab.tracking.sweeps import parent_tags

    tags.update(parent_tags())
    reopen = resume if resume and _is_open(uri, resume, experiment_id) else None
    start = {"run_id": reopen} if reopen else {"experiment_id": experiment_id, "run_name": run_name(config)}
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


def slurm_job_id() -> str | None:
    """The SLURM job this process runs in, as `sacct`/`scancel` name it (`<array>_<task>`)."""
    if array := os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


def ensure_experiment(uri: str, name: str) -> str:
    """The id of experiment `name`, created if needed; safe when many jobs race to create it.

    Not `mlflow.set_experiment`: in MLflow 3.17 the process that loses the creation race gets
    the experiment back but never makes it active, so its run lands in "Default" (found with 8
    jobs on a fresh server; also reported as ergodicio/adept#292).
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri)
    if found := client.get_experiment_by_name(name):
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.get_experiment_by_name(name).experiment_id


def _is_open(uri: str, run_id: str, experiment_id: str) -> bool:
    """Whether run `run_id` exists in this store's experiment and never finished."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        info = MlflowClient(uri).get_run(run_id).info
    except MlflowException:
        return False
    return info.experiment_id == experiment_id and info.status in ("RUNNING", "KILLED")


def logged_models(uri: str, run_id: str) -> list[Any]:
    """The models run `run_id` logged, oldest first (MLflow 3 LoggedModels, with their status)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    outputs = client.get_run(run_id).outputs
    models = [client.get_logged_model(o.model_id) for o in (outputs.model_outputs if outputs else [])]
    return sorted(models, key=lambda model: model.creation_timestamp)


def fail_unfinished_models(uri: str, run_id: str) -> None:
    """Mark FAILED the models a killed process left half-uploaded (PENDING) in run `run_id`.

    MLflow records a model in the run before uploading it and marks it READY after, or FAILED
    on an exception; a SIGKILL in between leaves it PENDING, looking like an upload under way.
    """
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus

    client = MlflowClient(uri)
    for model in logged_models(uri, run_id):
        if model.status == LoggedModelStatus.PENDING:
            client.set_logged_model_tags(model.model_id, {"failure.reason": "its process was killed"})
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)


def log_model(net: Any, input_example: Any) -> None:
    """Log `net` to the active run with a signature and input example (torch.export format).

    Pinning `pip_requirements` skips MLflow's 6-9 s requirement inference.
    """
    import mlflow
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    example = np.asarray(input_example, dtype=np.float32)
    with torch.no_grad():
        output = net(torch.from_numpy(example)).numpy()
    mlflow.pytorch.log_model(
        net,
        name="model",
        input_example=example,
        signature=infer_signature(example, output),
        pip_requirements=[f"torch=={version('torch').split('+')[0]}", f"mlflow=={version('mlflow')}"],
    )


def log_evaluation(
    tracking: TrackingConfig, run_id: str, metrics: dict[str, float], artifacts: list[Path]
) -> None:
    """Add test metrics and report files to the training run `run_id`."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(resolve_uri(tracking))
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
    for path in artifacts:
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
