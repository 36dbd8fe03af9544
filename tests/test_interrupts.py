"""A training ended by a signal leaves its MLflow run KILLED with the reason, never RUNNING."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import live_store, run_env, start, wait_until

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


def test_a_signal_to_a_joblib_sweep_stops_every_worker_and_a_rerun_resumes(prepared_project: Path) -> None:
    import psutil

    project = prepared_project
    sweep = ["python", "-m", "pipelines.train", "-m", "model.size=l,xl,xs", "trainer.max_epochs=15"]
    slow = ["trainer.batch_size=8", "trainer.early_stopping.enabled=false", "trainer.progress_bar=false"]
    cmd = [*sweep, *slow, "sweep.bootstrap=20", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    child = start(cmd, project)
    client = live_store(project)

    def both_training() -> list[str] | None:
        assert child.poll() is None, child.communicate()[0]
        experiment = client.get_experiment_by_name("digits-mlp")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        training = [r for r in runs if r.info.status == "RUNNING" and "train/loss" in r.data.metrics]
        return [r.info.run_id for r in training] if len(training) == 2 else None

    try:
        running = wait_until(both_training, "both workers' first logged epoch", timeout=240, every=0.5)
        workers = psutil.Process(child.pid).children(recursive=True)
        child.send_signal(signal.SIGTERM)  # to the command only, as `kill <pid>` does
        output, _ = child.communicate(timeout=120)
    finally:
        child.kill()

    assert child.returncode == 130, output
    assert "sweep ladder stopped by SIGTERM: mlp-l-s0, mlp-xl-s0 ended KILLED, nothing was fitted" in output
    assert "sweep job xs-s0 not started: the sweep was stopped by SIGTERM" in output
    wait_until(lambda: not any(w.is_running() for w in workers), "every worker process ending", timeout=30)
    store = MlflowClient(f"sqlite:///{project}/mlflow.db")
    for run_id in running:  # each training stopped at a step boundary, its run marked
        stopped = store.get_run(run_id)
        assert stopped.info.status == "KILLED" and stopped.data.tags["failure.reason"] == (
            "interrupted by its sweep's stop"
        )
    runs = store.search_runs([store.get_experiment_by_name("digits-mlp").experiment_id])
    [parent] = [r for r in runs if r.info.run_name == "ladder"]
    assert parent.info.status == "KILLED" and "RUNNING" not in {r.info.status for r in runs}
    assert not (project / "reports/sweeps").exists()

    # the same command again resumes the two stopped trainings and trains the third
    again = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=run_env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming l-s0 after epoch" in again.stdout and "resuming xl-s0 after epoch" in again.stdout
    assert "sweep ladder: 3 runs fitted" in again.stdout


def test_a_sweep_whose_worker_is_killed_outright_leaves_no_run_running(prepared_project: Path) -> None:
    import psutil

    project = prepared_project
    cmd = [
        *["python", "-m", "pipelines.train", "-m", "model.size=l,xl", "trainer.max_epochs=200"],
        *["trainer.batch_size=8", "trainer.early_stopping.enabled=false", "trainer.progress_bar=false"],
        *["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    ]
    child = start(cmd, project)
    client = live_store(project)

    def training() -> bool:
        assert child.poll() is None, child.communicate()[0]
        experiment = client.get_experiment_by_name("digits-mlp")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return any(r.info.status == "RUNNING" and "train/loss" in r.data.metrics for r in runs)

    try:
        wait_until(training, "a worker's first logged epoch", timeout=240, every=0.5)
        [worker, *_] = [
            p
            for p in psutil.Process(child.pid).children(recursive=True)
            if "popen_loky" in " ".join(p.cmdline())
        ]
        worker.kill()  # SIGKILL: loky's pool breaks and the launcher raises in the command
        output, _ = child.communicate(timeout=120)
    finally:
        child.kill()

    assert child.returncode not in (0, None), output
    store = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = store.search_runs([store.get_experiment_by_name("digits-mlp").experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}, "the command closed what its jobs left open"
    [parent] = [r for r in runs if r.info.run_name == "ladder"]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure.reason"] == "its command failed before its jobs ended"
