"""Where MLflow runs go: the config's URI, else the environment's, else the project's SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.config import TrackingConfig
from scalelab.tracking.store import resolve_uri


def test_uri_comes_from_config_then_environment_then_the_local_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert resolve_uri(TrackingConfig()) == "sqlite:///mlflow.db"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # a queued DVC experiment: the real repository
    assert resolve_uri(TrackingConfig()) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri(TrackingConfig()) == "http://127.0.0.1:5000"
    assert resolve_uri(TrackingConfig(uri="sqlite:///x.db")) == "sqlite:///x.db"
