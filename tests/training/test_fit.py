"""Training: real Lightning fits on digits, seeded, checkpointed with provenance, deterministic."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from scalelab.config import ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.errors import TrainingDiverged
from scalelab.training.fit import fit, torch_threads
from scalelab.training.saved import META_KEY, load_network

MODEL = ModelConfig(size="s", ladder={"s": {"width": 32, "depth": 2}})
TRAINER = TrainerConfig(max_epochs=8, batch_size=64, progress_bar=False)


def train(digits: Path, out: Path, seed: int = 0):
    data = PreparedDataModule(digits, TRAINER.batch_size, seed, TRAINER.steps_per_call)
    return fit(MODEL, TRAINER, data, seed=seed, out_dir=out)


def test_fit_learns_digits_and_reports_metrics_under_mlflow_names(digits: Path, tmp_path: Path) -> None:
    result = train(digits, tmp_path / "models")
    assert result.metrics["val/acc"] > 0.8
    assert result.metrics["train/loss"] < 1.0
    assert result.metrics["model/params"] == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert result.metrics["train/samples_seen"] == 8 * 1293
    for key in ("val/loss", "val/f1_macro", "train/acc", "train/seconds", "train/samples_per_second"):
        assert key in result.metrics


def test_checkpoint_carries_provenance_and_reloads_the_same_network(digits: Path, tmp_path: Path) -> None:
    result = train(digits, tmp_path / "models")
    assert result.checkpoint == tmp_path / "models" / "model.ckpt"
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["model.ckpt"], "no temp files left"
    meta = torch.load(result.checkpoint, weights_only=True)[META_KEY]
    assert meta["model"]["ladder"]["s"] == {"width": 32, "depth": 2}
    assert meta["input_shape"] == [1, 8, 8] and meta["seed"] == 0 and meta["loss"] == "cross_entropy"
    net, _ = load_network(result.checkpoint)
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), result.net(x))


def test_same_seed_gives_identical_weights_other_seed_does_not(digits: Path, tmp_path: Path) -> None:
    a = train(digits, tmp_path / "a").net.state_dict()
    b = train(digits, tmp_path / "b").net.state_dict()
    c = train(digits, tmp_path / "c", seed=1).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize(
    ("lr_schedule", "factors"),
    [("constant", [1, 1, 1, 1]), ("cosine", [(1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])],
)
def test_the_learning_rate_of_each_epoch_follows_the_schedule(
    digits: Path, tmp_path: Path, lr_schedule: str, factors: list[float]
) -> None:
    trainer = dataclasses.replace(TRAINER, max_epochs=4, lr_schedule=lr_schedule)
    data = PreparedDataModule(digits, trainer.batch_size, 0, trainer.steps_per_call)
    result = fit(MODEL, trainer, data, seed=0, out_dir=tmp_path)
    history = result.history
    assert [epoch["train/lr"] for epoch in history] == pytest.approx([1e-3 * f for f in factors])


def test_a_nan_loss_stops_training_with_a_clear_error(digits: Path, tmp_path: Path) -> None:
    poisoned = tmp_path / "poisoned"
    shutil.copytree(digits, poisoned)
    stored = torch.load(poisoned / "train.pt", weights_only=True)
    x = stored["x"].to(torch.float32)  # uint8 pixels cannot be NaN; float32 ones load the same way
    x[700, 0, 3, 3] = float("nan")  # one bad pixel reaches the model mid-epoch
    torch.save({**stored, "x": x}, poisoned / "train.pt")
    data = PreparedDataModule(poisoned, TRAINER.batch_size, 0, TRAINER.steps_per_call)
    with pytest.raises(TrainingDiverged, match=r"train/loss became nan at step \d+ \(epoch 0\)"):
        fit(MODEL, TRAINER, data, seed=0, out_dir=tmp_path / "models")


@pytest.mark.parametrize(
    ("settings", "slurm_cpus", "expected"),
    [
        ({}, None, None),  # torch's own default
        ({"num_threads": 3}, "8", 3),  # the user's choice wins
        ({}, "4", 4),  # what SLURM gave the job
        ({"strategy": "ddp", "devices": 2}, "4", 2),  # shared among the job's DDP processes
        ({"strategy": "ddp", "devices": 2}, "1", 1),  # never below one
    ],
)
def test_torch_threads_follow_the_config_then_the_scheduler(
    monkeypatch: pytest.MonkeyPatch, settings: dict, slurm_cpus: str | None, expected: int | None
) -> None:
    if slurm_cpus is None:
        monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    else:
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", slurm_cpus)
    assert torch_threads(TrainerConfig(**settings)) == expected


def test_ddp_on_cpu_without_a_scheduler_shares_the_cores_it_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert torch_threads(TrainerConfig(strategy="ddp", devices=2)) == max(1, cores // 2)
