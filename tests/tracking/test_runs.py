"""MLflow runs of trainings: each is self-describing and ends in an honest state."""

from __future__ import annotations

import socket
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from scalelab.config import Config, load_config
from scalelab.errors import ScalelabError
from scalelab.tracking import runs
from scalelab.tracking.names import flatten
from tests.conftest import ROOT


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"]["uri"] = f"sqlite:///{tmp_path}/mlflow.db"
    return load_config(params)


def test_telemetry_is_off_unless_the_user_opted_in() -> None:
    import os

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_a_run_is_self_describing_and_ends_finished(config: Config) -> None:
    with runs.training_run(config, "f1ng3rpr1nt") as run_id:
        mlflow.log_metric("model/params", 123.0)  # logs to the run it opened
    run = MlflowClient(config.tracking.uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "mlp-l-s0"
    assert run.data.tags["dataset.fingerprint"] == "f1ng3rpr1nt"
    assert run.data.tags["size"] == "l" and run.data.tags["seed"] == "0"
    assert "mlflow.source.git.commit" in run.data.tags
    assert run.data.params["model.size"] == "l"
    assert run.data.params["trainer.optimizer.lr"] == "0.001"
    assert run.data.metrics["model/params"] == 123.0
    artifacts = [a.path for a in MlflowClient(config.tracking.uri).list_artifacts(run_id)]
    assert "config.yaml" in artifacts
    experiment = MlflowClient(config.tracking.uri).get_experiment(run.info.experiment_id)
    assert experiment.name == "mnist1d-mlp", "<data>-<model>"


def test_a_run_whose_body_raises_is_marked_failed_with_the_reason(config: Config) -> None:
    with pytest.raises(RuntimeError), runs.training_run(config, "x") as run_id:
        raise RuntimeError("boom")
    run = MlflowClient(config.tracking.uri).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure.reason"] == "RuntimeError: boom"


def test_an_unreachable_server_is_refused_before_any_work(config: Config) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.tracking.uri = f"http://127.0.0.1:{port}"
    unreachable = f"MLflow server http://127.0.0.1:{port} is unreachable"
    with pytest.raises(ScalelabError, match=unreachable), runs.training_run(config, "x"):
        pytest.fail("the run must not start")


def test_an_unwritable_store_is_refused_before_any_work(config: Config, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    config.tracking.uri = f"sqlite:///{tmp_path}/a-file/mlflow.db"
    with pytest.raises(ScalelabError, match="cannot be written"), runs.training_run(config, "x"):
        pytest.fail("the run must not start")


def test_flatten_names_nested_keys_with_dots() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2]}) == {
        "a.b": "1",
        "a.c.d": "None",
        "e": "[1, 2]",
    }


def test_a_run_that_is_not_where_the_study_looks_fails_loudly(config: Config) -> None:
    with runs.training_run(config, "f1ng3rpr1nt") as run_id:
        pass  # the training ran; the run was checked on its way out
    client = MlflowClient(config.tracking.uri)
    home = client.get_run(run_id).info.experiment_id
    runs.verify_recorded(config.tracking.uri, run_id, home)
    elsewhere = client.create_experiment("another study")
    with pytest.raises(runs.RunNotRecorded, match=f"MLflow run {run_id} ended but is not FINISHED in "
                       f"experiment {elsewhere} .*: it is FINISHED in experiment {home}; check the "
                       "tracking server"):  # fmt: skip
        runs.verify_recorded(config.tracking.uri, run_id, elsewhere)
    with pytest.raises(runs.RunNotRecorded, match="the store does not have it"):
        runs.verify_recorded(config.tracking.uri, "0" * 32, home)
