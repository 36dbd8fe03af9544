"""Lightning's own parts, chosen by config: loggers get every epoch, callbacks see the monitored
metrics, gradient clipping bounds each step, bf16 autocast trains, and what cannot work is refused."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from scalelab.config import ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.training import addons
from scalelab.training.fit import fit
from tests.conftest import ROOT, run

MODEL = ModelConfig(size="s", ladder={"s": {"width": 32, "depth": 2}})
TRAINER = TrainerConfig(max_epochs=3, batch_size=64, progress_bar=False)
RUN = "mlp-s-s0"


def group(path: str) -> dict:
    """A config group's option as Hydra composes it: its entries by name."""
    return yaml.safe_load((ROOT / "conf" / path).read_text())


class FirstWeights(pl.Callback):
    """The network's weights when training starts."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.weights = torch.nn.utils.parameters_to_vector(pl_module.parameters()).detach().clone()


def train(digits: Path, out: Path, trainer: TrainerConfig = TRAINER, **kwargs):
    data = PreparedDataModule(digits, trainer.batch_size, 0, trainer.steps_per_call)
    return fit(MODEL, trainer, data, seed=0, out_dir=out, **kwargs)


def test_the_csv_and_tensorboard_loggers_get_every_epoch(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    specs = group("logger/csv.yaml") | group("logger/tensorboard.yaml")
    lr_monitor = addons.callbacks(group("callbacks/lr_monitor.yaml"), RUN)
    result = train(digits, tmp_path / "models", loggers=addons.loggers(specs, RUN), callbacks=lr_monitor)

    with (tmp_path / "logs/csv" / RUN / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    val = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert val == pytest.approx([epoch["val/loss"] for epoch in result.history]), (
        "one row per epoch, MLflow's values"
    )
    assert [r["train/loss"] for r in rows if r.get("train/loss")], "train/* too"
    assert any(r.get("lr-Adam") for r in rows), "LearningRateMonitor's rate reached the logger"
    assert list((tmp_path / "logs/tensorboard" / RUN).glob("events.out.tfevents.*"))


def test_a_checkpoint_callback_can_monitor_another_metric(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    callbacks = addons.callbacks(group("callbacks/best_val_acc.yaml"), RUN)
    result = train(digits, tmp_path / "models", callbacks=callbacks)
    saved = torch.load(tmp_path / "logs/best_val_acc" / f"{RUN}.ckpt", weights_only=True)
    accuracies = [epoch["val/acc"] for epoch in result.history]
    assert saved["epoch"] == accuracies.index(max(accuracies)), "the epoch of the highest val/acc"


def test_gradient_clipping_bounds_every_step(digits: Path, tmp_path: Path) -> None:
    sgd = {"_target_": "torch.optim.SGD", "lr": 0.5}
    clip = 1e-3
    trainer = dataclasses.replace(
        TRAINER, optimizer=sgd, gradient_clip_val=clip, early_stopping=TRAINER.early_stopping
    )
    first = FirstWeights()
    result = train(digits, tmp_path / "clipped", trainer, callbacks=[first])
    steps = result.metrics["train/samples_seen"] // trainer.batch_size + trainer.max_epochs  # last batches
    moved = torch.linalg.vector_norm(
        torch.nn.utils.parameters_to_vector(result.net.parameters()) - first.weights
    )
    assert 0 < moved <= steps * sgd["lr"] * clip * 1.0001, (
        "each SGD step moves the weights by at most lr x clip"
    )
    free = FirstWeights()
    unclipped = train(
        digits, tmp_path / "free", dataclasses.replace(trainer, gradient_clip_val=None), callbacks=[free]
    )
    moved_free = torch.linalg.vector_norm(
        torch.nn.utils.parameters_to_vector(unclipped.net.parameters()) - free.weights
    )
    assert moved_free > 10 * moved


def test_bf16_autocast_trains_on_the_cpu(digits: Path, tmp_path: Path) -> None:
    full = train(digits, tmp_path / "fp32")
    half = train(digits, tmp_path / "bf16", dataclasses.replace(TRAINER, precision="bf16-mixed"))
    assert half.metrics["val/acc"] > 0.5 and torch.isfinite(torch.tensor(half.metrics["val/loss"]))
    assert half.metrics["val/loss"] != full.metrics["val/loss"], "the matmuls ran in bfloat16"
    assert all(p.dtype == torch.float32 for p in half.net.parameters()), "the weights stay float32"


@pytest.mark.slow
def test_loggers_and_callbacks_are_chosen_on_the_command_line(prepared_project: Path) -> None:
    project = prepared_project
    train_cmd = [
        "python",
        "-m",
        "pipelines.train",
        "model.size=xs",
        "trainer.max_epochs=2",
        "trainer.progress_bar=false",
    ]
    run([*train_cmd, "logger=csv", "callbacks=lr_monitor"], project)
    with (project / "logs/csv/mlp-xs-s0/metrics.csv").open() as f:
        header = next(csv.reader(f))
    assert {"val/loss", "train/loss", "lr-Adam"} <= set(header)
    result = run([*train_cmd, "callbacks=early_stopping", "trainer.early_stopping.patience=1"], project)
    assert "trained xs-s0" in result.stdout
