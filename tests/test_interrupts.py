"""A training ended by a signal leaves its MLflow run KILLED with the reason, never RUNNING."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import live_store, start, wait_until

pytestmark = pytest.mark.slow


def training_run(project: Path, child: subprocess.Popen) -> str:
    """Wait until the training process is running epochs (its open MLflow run has logged one);
    return the run id. (240 s: a loaded CI box starts slowly.)"""
    client = live_store(project)

    def training() -> str | None:
        assert child.poll() is None, child.communicate()[0]
        experiment = client.get_experiment_by_name("digits-mlp")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and runs[0].info.status == "RUNNING" and "train/loss" in runs[0].data.metrics:
            return runs[0].info.run_id
        return None

    return wait_until(training, "the training's first logged epoch", timeout=240, every=0.5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_training_ends_its_run_killed(prepared_project: Path, sig: signal.Signals) -> None:
    project = prepared_project
    child = start(
        [
            "python",
            "-m",
            "pipelines.train",
            "model.size=xl",
            "trainer.max_epochs=1000",
            "trainer.early_stopping.enabled=false",  # so it is still training when signalled
            "trainer.progress_bar=false",
        ],
        project,
    )
    try:
        run_id = training_run(project, child)
        child.send_signal(sig)
        output, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, output
    assert f"scalelab: interrupted by {sig.name}; MLflow run {run_id} is KILLED" in output
    finished = MlflowClient(f"sqlite:///{project}/mlflow.db").get_run(run_id)
    assert finished.info.status == "KILLED", output
    assert finished.data.tags["failure.reason"] == f"interrupted by {sig.name}"
