"""Where MLflow runs go, checked before any work: the store's URI, its creation, the experiment."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from scalelab.config import TrackingConfig
from scalelab.errors import ScalelabError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_URI = "sqlite:///mlflow.db"
_ENSURED: set[str] = set()  # URIs ensure_store has checked in this process


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


def mlflow_client(where: TrackingConfig | str) -> MlflowClient:
    """The one way the lab opens MLflow: on a URI, or on the tracking config's (`resolve_uri`),
    after `ensure_store` has checked (once per process) that the store is there."""
    from mlflow import MlflowClient

    uri = where if isinstance(where, str) else resolve_uri(where)
    ensure_store(uri)
    return MlflowClient(uri)


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


def ensure_experiment(uri: str, name: str) -> str:
    """The id of experiment `name`, created if needed; safe when many jobs race to create it.

    Not `mlflow.set_experiment`: in MLflow 3.17 the process that loses the creation race gets
    the experiment back but never makes it active, so its run lands in "Default" (found with 8
    jobs on a fresh server; also reported as ergodicio/adept#292).
    """
    from mlflow.exceptions import MlflowException

    store = mlflow_client(uri)
    if found := store.get_experiment_by_name(name):
        return found.experiment_id
    try:
        return store.create_experiment(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return store.get_experiment_by_name(name).experiment_id
