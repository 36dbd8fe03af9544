"""Fair training per rung: Lightning's EarlyStopping and ModelCheckpoint see `val/loss` every epoch,
training stops when it stops improving, and the kept weights are the best-validation epoch's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from scalelab.config import EarlyStoppingConfig, ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.evaluation import predict
from scalelab.training import resume
from scalelab.training.fit import fit
from scalelab.training.losses import loss_fn
from scalelab.training.saved import load_network

# A wide MLP at a high learning rate overfits digits' 1,293 training images within a few epochs.
MODEL = ModelConfig(size="l", ladder={"l": {"width": 256, "depth": 2}})
OVERFITS = TrainerConfig(
    max_epochs=30,
    batch_size=64,
    optimizer={"_target_": "torch.optim.Adam", "lr": 0.01},
    early_stopping=EarlyStoppingConfig(patience=2),
    progress_bar=False,
)


class CallbackMetrics(pl.Callback):
    """Records what `trainer.callback_metrics` holds when each epoch ends (before the module's
    own epoch-end hook: this epoch's validation is in, its training summary not yet)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []
        self.final: dict[str, float] = {}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seen.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.final = {k: float(v) for k, v in trainer.callback_metrics.items()}


def train(digits: Path, out: Path, trainer: TrainerConfig = OVERFITS, **kwargs):
    data = PreparedDataModule(digits, trainer.batch_size, 0, trainer.steps_per_call)
    return fit(MODEL, trainer, data, seed=0, out_dir=out, **kwargs)


def val_loss(net: torch.nn.Module, digits: Path) -> float:
    data = PreparedDataModule(digits, 64)
    data.setup("fit")
    x, y = data.splits["val"]
    return float(loss_fn("cross_entropy", predict(net, x), y))


def test_callback_metrics_hold_every_epochs_metrics_for_lightnings_callbacks(
    digits: Path, tmp_path: Path
) -> None:
    peek = CallbackMetrics()
    result = train(digits, tmp_path, dataclasses.replace(OVERFITS, max_epochs=3), callbacks=[peek])
    assert len(peek.seen) == 3
    for seen, epoch in zip(peek.seen, result.history, strict=True):
        assert seen["val/loss"] == pytest.approx(epoch["val/loss"], rel=1e-6)
        assert seen["val/acc"] == pytest.approx(epoch["val/acc"], rel=1e-6)
    assert peek.final["train/loss"] == pytest.approx(result.history[-1]["train/loss"], rel=1e-6)


def test_training_stops_once_val_loss_stops_improving_and_keeps_the_best_weights(
    digits: Path, tmp_path: Path
) -> None:
    result = train(digits, tmp_path)
    losses = [epoch["val/loss"] for epoch in result.history]
    best, stopped = int(result.metrics["train/best_epoch"]), int(result.metrics["train/stopped_epoch"])
    assert stopped == len(losses) - 1 < OVERFITS.max_epochs - 1, "stopped before the budget"
    assert best == losses.index(min(losses)) and stopped - best == 2, "patience 2"
    assert result.metrics["train/converged"] == 1.0
    assert result.metrics["val/loss"] == min(losses), "the kept epoch's metrics, not the last one's"
    assert losses[-1] > min(losses), "the last epoch is worse: keeping it would be wrong"
    # the returned network and the stored checkpoint are the best epoch's weights
    assert val_loss(result.net, digits) == pytest.approx(min(losses), rel=1e-5)
    stored, _ = load_network(result.checkpoint)
    assert val_loss(stored, digits) == pytest.approx(min(losses), rel=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"], "scratch checkpoints removed"


def test_without_early_stopping_the_whole_budget_is_trained_and_the_best_epoch_kept(
    digits: Path, tmp_path: Path
) -> None:
    trainer = dataclasses.replace(OVERFITS, max_epochs=8, early_stopping=EarlyStoppingConfig(enabled=False))
    result = train(digits, tmp_path, trainer)
    losses = [epoch["val/loss"] for epoch in result.history]
    assert result.metrics["train/stopped_epoch"] == 7 and len(losses) == 8
    assert result.metrics["train/best_epoch"] == losses.index(min(losses))
    assert val_loss(result.net, digits) == pytest.approx(min(losses), rel=1e-5)


def test_a_run_still_improving_when_the_budget_ends_is_not_converged(digits: Path, tmp_path: Path) -> None:
    slow = dataclasses.replace(OVERFITS, max_epochs=3, optimizer={"_target_": "torch.optim.Adam", "lr": 1e-4})
    result = train(digits, tmp_path, slow)
    assert result.metrics["train/best_epoch"] == result.metrics["train/stopped_epoch"] == 2
    assert result.metrics["train/converged"] == 0.0


def test_a_run_resumed_across_its_early_stop_ends_bit_identical(digits: Path, tmp_path: Path) -> None:
    through = train(digits, tmp_path / "a", checkpoints=tmp_path / "ckpt-a")
    stopped = int(through.metrics["train/stopped_epoch"])

    class Crash(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, *_: object) -> None:
            if trainer.current_epoch == stopped:  # the epoch at which early stopping fires
                raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(digits, tmp_path / "b", checkpoints=tmp_path / "ckpt-b", callbacks=[Crash()])
    assert resume.previous(tmp_path / "ckpt-b").epochs_done == stopped
    resumed = train(digits, tmp_path / "b", checkpoints=tmp_path / "ckpt-b")
    a, b = through.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    timing = ("train/seconds", "train/samples_per_second")
    assert {k: v for k, v in through.metrics.items() if k not in timing} == {
        k: v for k, v in resumed.metrics.items() if k not in timing
    }


def test_a_run_killed_after_early_stopping_fired_trains_no_further_when_resumed(
    digits: Path, tmp_path: Path
) -> None:
    through = train(digits, tmp_path / "a", checkpoints=tmp_path / "ckpt-a")

    class CrashAtTheEnd(pl.Callback):
        def on_train_end(self, *_: object) -> None:  # the last epoch's checkpoint is written
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(digits, tmp_path / "b", checkpoints=tmp_path / "ckpt-b", callbacks=[CrashAtTheEnd()])
    resumed = train(digits, tmp_path / "b", checkpoints=tmp_path / "ckpt-b")
    assert resumed.metrics["train/stopped_epoch"] == through.metrics["train/stopped_epoch"]
    assert len(resumed.history) == len(through.history)
