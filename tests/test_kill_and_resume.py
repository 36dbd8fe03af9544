"""`kill -9` a training at any moment and run the same command again: it resumes from the last
complete checkpoint into the same MLflow run, and ends exactly where an uninterrupted one ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from scalelab.tracking.logged_models import complete_model, logged_models
from scalelab.training.saved import CHECKPOINT_FILE
from tests.conftest import alive, copy_project, run, run_queue, start, start_queue, wait_until

pytestmark = pytest.mark.slow

EPOCHS = 60  # xl on digits: ~0.1 s an epoch, so a kill lands mid-training
# One thread: the test's busy-waiting must not fight the training's thread pool for the 2 cores.
# Early stopping stays on (its state is in every checkpoint a resume reads) with a patience that
# lets the training run its budget: stopped after ~15 epochs, it could end before a kill lands.
BASE = [
    "model.size=xl",
    "trainer.progress_bar=false",
    "trainer.num_threads=1",
    f"trainer.early_stopping.patience={EPOCHS}",
]
OVERRIDES = [*BASE, f"trainer.max_epochs={EPOCHS}"]
# 4x wider: a 27 MB checkpoint, whose temp file lives long enough for the kill to land in it
WIDE = [*BASE, "model.width=2048", "trainer.max_epochs=10"]
# two processes (Lightning DDP over gloo): rank zero checkpoints and logs for both
DDP = [*OVERRIDES, "trainer=ddp"]
ATTEMPTS = 6  # kills that may land just after the rename instead: retry, resuming each time
TORN = ".last.ckpt.*.tmp"  # atomic.atomic_path's temp file for last.ckpt
TIMING = ("train/seconds", "train/samples_per_second")  # wall-clock: the only numbers allowed to differ


def train(overrides: list[str]) -> list[str]:
    return ["python", "-m", "pipelines.train", *overrides]


def store(repo: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{repo}/mlflow.db")


def outcome(repo: Path) -> tuple[str, dict[str, float], dict[str, torch.Tensor]]:
    """Run id, final metrics (timings left out) and weights of the last finished xl training."""
    reports = repo / "reports/train/xl/s0"
    metrics = json.loads((reports / "train_metrics.json").read_text())
    weights = torch.load(repo / "models/xl/s0" / CHECKPOINT_FILE, weights_only=True)["state_dict"]
    run_id = json.loads((reports / "run.json").read_text())["run_id"]
    return run_id, {k: v for k, v in metrics.items() if k not in TIMING}, weights


@pytest.fixture(scope="module")
def repo(prepared_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with prepared digits, shared by this module's kills."""
    return copy_project(prepared_template, tmp_path_factory.mktemp("resume") / "project")


REFERENCES: dict[tuple[str, ...], tuple[dict, dict]] = {}


def reference(repo: Path, overrides: list[str]) -> tuple[dict, dict]:
    """Final metrics and weights of an uninterrupted training: what a resume must match."""
    if tuple(overrides) not in REFERENCES:
        run(train(overrides), repo)
        REFERENCES[tuple(overrides)] = outcome(repo)[1:]
    return REFERENCES[tuple(overrides)]


def checkpoint_file(repo: Path, name: str = "last.ckpt") -> Path | None:
    found = list((repo / "checkpoints").glob(f"xl-s0-*/{name}"))
    return found[0] if found else None


def first_checkpoint(repo: Path) -> Path:
    return wait_until(lambda: checkpoint_file(repo), "the first epoch checkpoint", every=0.01)


def epochs_logged(repo: Path) -> int:
    """How many epochs of the running xl training MLflow holds so far."""
    client = store(repo)
    experiment = client.get_experiment_by_name("digits-mlp")
    running = "attributes.status = 'RUNNING'"
    runs = client.search_runs([experiment.experiment_id], running) if experiment else []
    return max((len(client.get_metric_history(r.info.run_id, "val/loss")) for r in runs), default=0)


def mid_epoch(repo: Path) -> None:
    """Some epochs in, at an arbitrary point of an epoch: MLflow has just received the third
    epoch, which the training logs without waiting, on its way through the fourth."""
    first_checkpoint(repo)
    wait_until(lambda: epochs_logged(repo) >= 3, "three epochs logged", every=0.05)


def during_checkpoint_write(repo: Path) -> None:
    """While `AtomicCheckpointIO`'s temp file exists: written, or being written, not yet renamed."""
    folder = first_checkpoint(repo).parent
    # no pause between polls: the window lasts milliseconds
    wait_until(lambda: any(folder.glob(TORN)), "a checkpoint being written", timeout=60, every=0)


def between_checkpoint_and_mlflow(repo: Path) -> None:
    """Right after an epoch's checkpoint is renamed into place, before that epoch is logged."""
    mid_epoch(repo)
    inode = os.stat(checkpoint_file(repo)).st_ino  # type: ignore[arg-type]

    def replaced() -> bool:
        return os.stat(checkpoint_file(repo)).st_ino != inode  # type: ignore[arg-type]

    wait_until(replaced, "the next epoch's checkpoint", every=0)


class Missed(Exception):
    """The training ended before the moment to kill it came."""


def while_the_model_uploads(repo: Path) -> None:
    """After the last epoch, while MLflow uploads the trained model (its LoggedModel PENDING).

    The upload lasts about a second: on a busy machine a slow poll can miss it, and the training
    then ends (it writes its train_metrics.json after the upload); that raises `Missed`."""
    client = store(repo)
    reports = repo / "reports/train/xl/s0/train_metrics.json"
    written = reports.stat().st_mtime_ns if reports.exists() else None

    def uploading() -> bool:
        experiment = client.get_experiment_by_name("digits-mlp") if (repo / "mlflow.db").exists() else None
        models = client.search_logged_models([experiment.experiment_id]) if experiment else []
        if any(str(model.status) == "PENDING" for model in models):
            return True
        if reports.exists() and reports.stat().st_mtime_ns != written:
            raise Missed("the training ended before a model upload was seen")
        return False

    wait_until(uploading, "a model upload", every=0.02)


def kill_when(repo: Path, moment: Callable[[Path], None], cmd: list[str]) -> str:
    """Start `cmd`, SIGKILL its whole process group at `moment`; return the run left RUNNING."""
    child = start(cmd, repo, start_new_session=True)
    try:
        try:
            moment(repo)
        except Missed:
            child.wait(timeout=60)  # let it end cleanly: its run FINISHED, nothing to resume
            raise
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert checkpoint_file(repo) is not None, "killed after a complete checkpoint"
    client = store(repo)
    [experiment] = [e for e in client.search_experiments() if e.name == "digits-mlp"]
    running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert len(running) == 1, "SIGKILL leaves exactly the killed run RUNNING"
    return running[0].info.run_id


def assert_resumed_like_reference(
    repo: Path, killed_run: str, output: str, expected: tuple[dict, dict]
) -> None:
    metrics, weights = expected
    n_epochs = int(metrics["train/stopped_epoch"]) + 1  # early stopping on: often fewer than max_epochs
    assert "resuming xl-s0 after epoch" in output
    run_id, resumed_metrics, resumed_weights = outcome(repo)
    assert run_id == killed_run, "the resumed training continues the killed MLflow run"
    assert resumed_metrics == metrics, "same final metrics as the uninterrupted training"
    assert resumed_weights.keys() == weights.keys()
    assert all(torch.equal(resumed_weights[k], weights[k]) for k in weights), "same weights, bit for bit"
    client = store(repo)
    assert client.get_run(run_id).info.status == "FINISHED"
    for name in ("train/loss", "train/acc", "val/loss", "val/acc"):
        steps = [m.step for m in client.get_metric_history(run_id, name)]
        assert sorted(steps) == list(range(n_epochs)), f"{name}: one point per epoch, no gap, no duplicate"
    assert not list((repo / "checkpoints").iterdir()), "a finished training leaves nothing to resume"


@pytest.mark.parametrize(
    ("moment", "overrides"),
    [
        (mid_epoch, OVERRIDES),
        (during_checkpoint_write, WIDE),
        (between_checkpoint_and_mlflow, OVERRIDES),
        (mid_epoch, DDP),
    ],
    ids=["mid-epoch", "during-checkpoint-write", "between-checkpoint-and-mlflow", "ddp-mid-epoch"],
)
def test_the_hydra_app_resumes_after_sigkill(
    repo: Path, moment: Callable[[Path], None], overrides: list[str]
) -> None:
    expected = reference(repo, overrides)
    killed_run = kill_when(repo, moment, train(overrides))
    if moment is during_checkpoint_write:
        torn = [checkpoint_file(repo, TORN)]
        while torn[-1] is None and len(torn) < ATTEMPTS:  # kill again: it resumes, then dies again
            assert kill_when(repo, moment, train(overrides)) == killed_run
            torn.append(checkpoint_file(repo, TORN))
        assert torn[-1] is not None, f"none of {ATTEMPTS} kills landed in a checkpoint write"
    output = run(train(overrides), repo).stdout
    assert_resumed_like_reference(repo, killed_run, output, expected)
    assert checkpoint_file(repo, TORN) is None


def test_a_training_killed_while_its_model_uploads_ends_with_one_complete_model(repo: Path) -> None:
    expected = reference(repo, OVERRIDES)
    for _ in range(ATTEMPTS):  # a busy machine may let an upload pass unseen: train again
        try:
            killed_run = kill_when(repo, while_the_model_uploads, train(OVERRIDES))
            break
        except Missed:
            continue
    else:
        pytest.fail(f"none of {ATTEMPTS} trainings was seen uploading its model")
    output = run(train(OVERRIDES), repo).stdout
    assert_resumed_like_reference(repo, killed_run, output, expected)
    uri = f"sqlite:///{repo}/mlflow.db"
    half, whole = logged_models(uri, killed_run)
    assert (str(half.status), half.tags["failure.reason"]) == ("FAILED", "its process was killed")
    assert str(whole.status) == "READY"
    assert complete_model(uri, killed_run) == whole.model_id, "the registry takes the complete one"


def test_dvc_repro_resumes_after_sigkill(repo: Path) -> None:
    expected = reference(repo, OVERRIDES)
    run(["python", "-m", "scalelab.params_file", *OVERRIDES], repo)
    repro = ["dvc", "repro", "train@xl"]
    killed_run = kill_when(repo, mid_epoch, repro)
    result = run(repro, repo)
    assert_resumed_like_reference(repo, killed_run, result.stdout + result.stderr, expected)
    assert "Stage 'train@xl' didn't change" in run(repro, repo).stdout


def test_a_changed_config_never_resumes_another_trainings_checkpoint(repo: Path) -> None:
    expected = reference(repo, OVERRIDES)
    killed_run = kill_when(repo, mid_epoch, train(OVERRIDES))
    other = run(train([*OVERRIDES, "trainer.optimizer.lr=0.002", "trainer.max_epochs=2"]), repo).stdout
    assert "resuming" not in other, "another learning rate is another training"
    output = run(train(OVERRIDES), repo).stdout
    assert_resumed_like_reference(repo, killed_run, output, expected)


def training_pids(cmd_part: str, under: Path) -> list[int]:
    """PIDs of Python trainings working under `under` whose command line contains `cmd_part`.

    Only the Python process itself: DVC runs a stage's command through `$SHELL -c` (or
    `/bin/sh -c`), and dash, unlike bash, does not exec into it, leaving a shell with the same
    command line as its parent.
    """
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
            cwd = (proc / "cwd").resolve()
        except (OSError, ValueError):
            continue
        python = Path(argv[0]).name.startswith("python")
        cmdline = " ".join(argv)
        if python and cmd_part in cmdline and "pipelines.train" in cmdline and cwd.is_relative_to(under):
            found.append(int(proc.name))
    return found


def test_a_queued_dvc_experiment_resumes_after_sigkill(prepared_project: Path) -> None:
    project = prepared_project
    overrides = OVERRIDES
    run(train(overrides), project)
    expected = outcome(project)[1:]  # an uninterrupted training, before anything is queued
    shutil.rmtree(project / "models")  # what is compared below must come from the experiment
    shutil.rmtree(project / "reports")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "pipeline"], project)
    settings = [f"-S{o}" for o in overrides if not o.startswith("model.size=")]

    run(["dvc", "exp", "run", "--queue", "-n", "killed", *settings, "train@xl"], project)
    start_queue(project, workers=1)
    mid_epoch(project)  # the queued training has checkpointed and goes on
    [pid] = training_pids("model.size=xl", under=project.resolve())
    os.kill(pid, signal.SIGKILL)  # the training alone, as the kernel's OOM killer would
    assert "Failed" in run_queue(project, workers=1)
    client = store(project)
    running = client.search_runs(
        [client.get_experiment_by_name("digits-mlp").experiment_id], "attributes.status = 'RUNNING'"
    )
    [killed_run] = [r.info.run_id for r in running]
    assert checkpoint_file(project) is not None, "the checkpoint outlives the experiment's temp copy"

    run(["dvc", "exp", "run", "--queue", "-n", "resumed", *settings, "train@xl"], project)
    assert "Success" in run_queue(project, workers=1)
    logs = run(["dvc", "queue", "logs", "resumed"], project).stdout
    # The experiment's results, into the workspace (only xl was trained: `dvc exp apply` would
    # look for the other rungs' outputs too)
    run(["dvc", "exp", "branch", "resumed", "resumed"], project)
    run(["git", "checkout", "resumed", "--", "params.yaml", "dvc.lock", "reports/train/xl"], project)
    run(["dvc", "checkout", "train@xl"], project)
    assert json.loads((project / "reports/train/xl/s0/run.json").read_text())["run_id"] == killed_run
    assert_resumed_like_reference(project, killed_run, logs, expected)


def test_dvc_queue_kill_stops_the_training_marks_its_run_and_the_next_run_resumes(
    prepared_project: Path,
) -> None:
    project = prepared_project
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "pipeline"], project)
    settings = [f"-S{o}" for o in OVERRIDES if not o.startswith("model.size=")]
    run(["dvc", "exp", "run", "--queue", "-n", "stopped", *settings, "train@xl"], project)
    start_queue(project, workers=1)
    mid_epoch(project)
    [pid] = training_pids("model.size=xl", under=project.resolve())
    run(["dvc", "queue", "kill", "stopped"], project)  # Ctrl-C, as DVC documents it
    wait_until(lambda: not alive(pid), "the training ending at a step", timeout=60)
    status = wait_until(
        lambda: (s := run(["dvc", "queue", "status"], project).stdout) and "Running" not in s and s,
        "the queue noting the kill",
        timeout=60,
        every=1,
    )
    assert "Failed" in status, "a killed experiment is a failed one (DVC's docs), never a success"
    client = store(project)
    [stopped] = client.search_runs([client.get_experiment_by_name("digits-mlp").experiment_id])
    assert stopped.info.status == "KILLED", "its MLflow run says what happened, not RUNNING"
    assert stopped.data.tags["failure.reason"] == "interrupted by SIGINT"
    assert checkpoint_file(project) is not None, "the kill left a checkpoint to resume from"

    run(["dvc", "exp", "run", "--queue", "-n", "resumed", *settings, "train@xl"], project)
    assert "Success" in run_queue(project, workers=1)
    logs = run(["dvc", "queue", "logs", "resumed"], project).stdout
    assert "resuming xl-s0 after epoch" in logs, "the next run continues from the kill's checkpoint"
