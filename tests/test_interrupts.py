"""A training ended by a signal leaves its MLflow run KILLED with the reason, never RUNNING."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import live_store, run, start

pytestmark = pytest.mark.slow


def running_run(project: Path, child: subprocess.Popen, timeout: float = 240) -> str:
    """Wait until the training process has opened its MLflow run; return the run id.

    (240 s: a loaded CI box starts slowly.)
    """
    client = live_store(project)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()[0]
        experiment = client.get_experiment_by_name("digits-mlp")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and runs[0].info.status == "RUNNING":
            return runs[0].info.run_id
        time.sleep(0.5)
    pytest.fail("training never opened its MLflow run")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_training_ends_its_run_killed(project: Path, sig: signal.Signals) -> None:
    run(["python", "-m", "pipelines.prepare"], project)
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
        run_id = running_run(project, child)
        time.sleep(3)  # into the epochs
        child.send_signal(sig)
        output, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, output
    assert f"scalelab: interrupted by {sig.name}; MLflow run {run_id} is KILLED" in output
    finished = MlflowClient(f"sqlite:///{project}/mlflow.db").get_run(run_id)
    assert finished.info.status == "KILLED", output
    assert finished.data.tags["failure.reason"] == f"interrupted by {sig.name}"
