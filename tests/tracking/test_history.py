"""A run's metric history: every epoch once, whether logged in the background or refilled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from scalelab.tracking.history import BUFFERING, RunHistory


def new_run(tmp_path: Path) -> tuple[str, MlflowClient, str]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("history"))
    return uri, client, run.info.run_id


def steps(client: MlflowClient, run_id: str, name: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))


def test_background_logging_is_complete_once_flushed(tmp_path: Path) -> None:
    uri, client, run_id = new_run(tmp_path)
    history = RunHistory(uri, run_id)
    for epoch in range(5):
        history.log({epoch: {"val/acc": epoch / 10, "val/loss": 1 - epoch / 10}}, wait=False)
    history.flush()
    assert steps(client, run_id, "val/acc") == [(e, e / 10) for e in range(5)]
    assert steps(client, run_id, "val/loss") == [(e, 1 - e / 10) for e in range(5)]


def test_fill_and_log_once_add_only_what_the_run_lacks_after_background_logging(tmp_path: Path) -> None:
    uri, client, run_id = new_run(tmp_path)
    history = RunHistory(uri, run_id)
    epochs = [{"val/acc": 0.5}, {"val/acc": 0.6}, {"val/acc": 0.7}]
    history.log({0: epochs[0]}, wait=False)  # still in flight when fill looks: fill waits for it
    assert history.fill(epochs) == 2
    history.log_once({"model/params": 42.0}, step=2)
    history.log_once({"model/params": 42.0}, step=2)
    assert steps(client, run_id, "val/acc") == [(0, 0.5), (1, 0.6), (2, 0.7)]
    assert steps(client, run_id, "model/params") == [(2, 42.0)]


def test_a_store_that_fails_stops_background_logging_at_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, client, run_id = new_run(tmp_path)
    history = RunHistory(uri, run_id)
    client.delete_run(run_id)  # the store now refuses every metric of this run
    history.log({0: {"val/loss": 1.0}}, wait=False)  # handed off: no error yet
    monkeypatch.setattr("scalelab.tracking.history.FLUSH_SECONDS", 0.0)  # the oldest is now overdue
    with pytest.raises(MlflowException, match="async logging"):
        history.log({1: {"val/loss": 0.9}}, wait=False)


def test_background_logging_buffers_so_a_run_ends_without_mlflow_queue_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unbuffered, MLflow's logging thread blocks in a 1 s queue read that ending a run waits out
    (benchmarks/tracking_overhead.py measures the difference)."""
    monkeypatch.delenv(BUFFERING, raising=False)
    uri, _, run_id = new_run(tmp_path)
    RunHistory(uri, run_id)
    assert int(os.environ[BUFFERING]) >= 1
