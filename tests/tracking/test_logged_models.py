"""A run's logged models are found whatever moment a kill cut their upload at, and the ones left
half-uploaded are marked FAILED, so the registry only ever takes a complete one."""

from __future__ import annotations

from pathlib import Path

import mlflow
import torch
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus

from scalelab.tracking.logged_models import complete_model, fail_unfinished_models, log_model, logged_models


def test_a_model_killed_before_mlflow_linked_it_to_its_run_is_found_and_failed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment_id).info.run_id
    # what mlflow's log_model does first; a SIGKILL before its next call (log_outputs) leaves this
    half = client.create_logged_model(experiment_id, name="model", source_run_id=run_id)
    assert not client.get_run(run_id).outputs.model_outputs, "the run's outputs do not list it"

    assert [m.model_id for m in logged_models(uri, run_id)] == [half.model_id]
    fail_unfinished_models(uri, run_id)
    assert client.get_logged_model(half.model_id).status == LoggedModelStatus.FAILED
    assert complete_model(uri, run_id) is None


def test_the_complete_model_is_the_last_one_uploaded_whole(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment_id) as run:
        half = client.create_logged_model(experiment_id, name="model", source_run_id=run.info.run_id)
        log_model(torch.nn.Linear(3, 2), torch.zeros(2, 3))
    first, last = logged_models(uri, run.info.run_id)
    assert first.model_id == half.model_id, "oldest first"
    assert complete_model(uri, run.info.run_id) == last.model_id
