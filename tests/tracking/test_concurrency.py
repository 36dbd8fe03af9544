"""Eight trainings logging at once lose nothing: to a fresh SQLite store, and to a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import start

pytestmark = pytest.mark.slow

JOBS = 8
EPOCH_METRICS = {f"{split}/{name}" for split in ("train", "val") for name in ("loss", "acc", "f1_macro")}
SUMMARY_METRICS = {"model/params", "model/flops_per_sample", "train/seconds", "train/samples_seen"}


def train_at_once(project: Path, *overrides: str) -> None:
    """Start JOBS trainings (seeds 0..JOBS-1) at the same moment; all must succeed."""
    children = [
        start(
            [
                "python",
                "-m",
                "pipelines.train",
                "model.size=xs",
                f"seed={seed}",
                "trainer.max_epochs=3",
                "trainer.progress_bar=false",
                *overrides,
            ],
            project,
        )
        for seed in range(JOBS)
    ]
    outputs = [child.communicate(timeout=600)[0] for child in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output


def assert_nothing_lost(client: MlflowClient) -> None:
    [experiment] = [e for e in client.search_experiments() if e.name == "digits-mlp"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(f"mlp-xs-s{s}" for s in range(JOBS))
    reference = runs[0].data
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.params.keys() == reference.params.keys(), "every param of every run arrived"
        assert r.data.metrics.keys() == reference.metrics.keys(), "every metric of every run arrived"
        assert r.data.metrics.keys() >= EPOCH_METRICS | SUMMARY_METRICS
        assert len(r.data.params) > 30 and r.data.params["seed"] == r.data.tags["seed"]
        for name in EPOCH_METRICS:
            assert [m.step for m in client.get_metric_history(r.info.run_id, name)] == [0, 1, 2]
        assert any(a.path == "config.yaml" for a in client.list_artifacts(r.info.run_id))


def test_eight_concurrent_trainings_share_a_fresh_sqlite_store(prepared_project: Path) -> None:
    project = prepared_project
    assert not (project / "mlflow.db").exists(), "the store is created by the racing jobs themselves"
    train_at_once(project)
    assert_nothing_lost(MlflowClient(f"sqlite:///{project}/mlflow.db"))


def test_eight_concurrent_trainings_share_a_real_tracking_server(
    prepared_project: Path, mlflow_server: str
) -> None:
    project = prepared_project
    client = MlflowClient(mlflow_server)
    # No experiment yet: the 8 jobs race to create it. With mlflow.set_experiment the losers'
    # runs landed in "Default" (2 of 3 tries); every run must be in the study's experiment.
    train_at_once(project, f"tracking.uri={mlflow_server}")
    assert_nothing_lost(client)
    assert not client.search_runs(["0"]), "no run strayed into the Default experiment"
    for r in client.search_runs([client.get_experiment_by_name("digits-mlp").experiment_id]):
        [output] = r.outputs.model_outputs  # the model went through the server's artifact proxy
        assert "READY" in str(client.get_logged_model(output.model_id).status)
    assert not (project / "mlflow.db").exists(), "nothing was written to the local store"
