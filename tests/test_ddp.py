"""Multi-process training (Lightning DDP, 2 CPU processes over gloo): one MLflow run logged by rank
zero, metrics summed over both processes, the same training as one process within noise, and a
DDP training killed by SIGKILL resumes (tests/test_kill_and_resume.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from scalelab.data.split_files import load_split
from scalelab.training.saved import load_network
from tests.conftest import run

pytestmark = pytest.mark.slow

TRAIN = [
    "python",
    "-m",
    "pipelines.train",
    "model.size=m",
    "trainer.max_epochs=3",
    "trainer.progress_bar=false",
]


def test_two_processes_train_one_run_like_one_process(prepared_project: Path) -> None:
    project = prepared_project
    ddp = run([*TRAIN, "trainer=ddp"], project)
    assert "Starting with 2 processes" in ddp.stdout + ddp.stderr
    ddp_weights = torch.load(project / "models/m/s0/model.ckpt", weights_only=True)["state_dict"]
    net, _ = load_network(project / "models/m/s0/model.ckpt")
    run(TRAIN, project)

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("digits-mlp").experiment_id])
    assert len(runs) == 2, "one MLflow run per training: the second process logs nothing"
    [multi] = [r for r in runs if r.data.params["trainer.strategy"] == "ddp"]
    [single] = [r for r in runs if r.data.params["trainer.strategy"] == "auto"]
    assert multi.data.params["trainer.devices"] == "2" and multi.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(multi.info.run_id, "val/acc")] == [0, 1, 2]

    # The logged validation metrics cover the whole split: both processes' halves, summed.
    x, y = load_split(project / "data/prepared/digits", "val")
    with torch.no_grad():
        logits = net.eval()(x)
    assert multi.data.metrics["val/acc"] == pytest.approx(
        (logits.argmax(1) == y).double().mean().item(), abs=1e-9
    )
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    assert multi.data.metrics["val/loss"] == pytest.approx(loss, rel=1e-5)

    # Each process steps on its half of every batch: the same updates as one process, within noise.
    assert multi.data.metrics["val/acc"] == pytest.approx(single.data.metrics["val/acc"], abs=0.02)
    assert multi.data.metrics["val/loss"] == pytest.approx(single.data.metrics["val/loss"], rel=0.02)
    one_weights = torch.load(project / "models/m/s0/model.ckpt", weights_only=True)["state_dict"]
    assert all(torch.allclose(ddp_weights[k], one_weights[k], atol=0.02) for k in one_weights)
    assert not list((project / "checkpoints").iterdir()), "rank zero cleaned up after the finished run"
