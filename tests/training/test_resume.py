"""Resuming in-process: a training stopped after an epoch and resumed ends bit-identical to one
that ran through, dropout's random draws included (the kill -9 tests are in tests/test_kill_and_resume.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from scalelab.config import ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.training import resume
from scalelab.training.fit import fit

CNN = ModelConfig(name="cnn", size="s", ladder={"s": {"width": 4, "depth": 2}})  # dropout 0.25
TRAINER = TrainerConfig(max_epochs=4, batch_size=64, progress_bar=False)


class Crash(pl.Callback):
    """Fails at the start of epoch `at`, after the previous epoch's checkpoint was written."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: object) -> None:
        if trainer.current_epoch == self.at:
            raise RuntimeError("simulated crash")


def train(
    digits: Path,
    trainer: TrainerConfig,
    out: Path,
    checkpoints: Path,
    callbacks: list[pl.Callback] | None = None,
):
    data = PreparedDataModule(digits, trainer.batch_size, 0, trainer.steps_per_call)
    return fit(CNN, trainer, data, seed=0, out_dir=out, checkpoints=checkpoints, callbacks=callbacks)


@pytest.mark.parametrize("lr_schedule", ["constant", "cosine"])  # cosine: the schedule's state too
def test_a_resumed_dropout_network_matches_an_uninterrupted_one(
    digits: Path, tmp_path: Path, lr_schedule: str
) -> None:
    trainer = dataclasses.replace(TRAINER, lr_schedule=lr_schedule)
    through = train(digits, trainer, tmp_path / "a", tmp_path / "ckpt-a")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(digits, trainer, tmp_path / "b", tmp_path / "ckpt-b", [Crash(at=2)])
    assert resume.previous(tmp_path / "ckpt-b").epochs_done == 2
    resumed = train(digits, trainer, tmp_path / "b", tmp_path / "ckpt-b")
    a, b = through.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "weights, batch-norm statistics included"
    timing = ("train/seconds", "train/samples_per_second")
    assert {k: v for k, v in through.metrics.items() if k not in timing} == {
        k: v for k, v in resumed.metrics.items() if k not in timing
    }


def test_a_resumed_language_model_under_a_token_budget_matches_an_uninterrupted_one(
    tiny_text: Path, tmp_path: Path
) -> None:
    """The per-step warm-up + cosine schedule and the cut last epoch resume exactly too."""
    gpt = ModelConfig(
        _target_="scalelab.models.gpt.gpt",
        name="gpt",
        size="t",
        ladder={"t": {"width": 16, "depth": 1}},
        kwargs={"dropout": 0.1},
        init="torch_default",
    )
    trainer = TrainerConfig(
        batch_size=64,
        max_tokens=80_000,  # 79 steps: two epochs of 34 and 11 steps of a third
        lr_schedule="warmup_cosine",
        warmup_steps=5,
        optimizer={"_target_": "torch.optim.AdamW", "lr": 3e-3},
        progress_bar=False,
    )

    def train_gpt(out: str, callbacks: list[pl.Callback] | None = None):
        data = PreparedDataModule(tiny_text, trainer.batch_size, 0, trainer.steps_per_call)
        return fit(
            gpt,
            trainer,
            data,
            seed=0,
            out_dir=tmp_path / out,
            checkpoints=tmp_path / f"ckpt-{out}",
            callbacks=callbacks,
        )

    through = train_gpt("a")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_gpt("b", [Crash(at=2)])
    resumed = train_gpt("b")
    a, b = through.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    timing = ("train/seconds", "train/samples_per_second", "train/tokens_per_second", "train/mfu")
    timing += ("machine/matmul_flops_per_second",)  # measured: wall-clock, like the rest
    assert {k: v for k, v in through.metrics.items() if k not in timing} == {
        k: v for k, v in resumed.metrics.items() if k not in timing
    }
    assert len(resumed.history) == 3 and through.history[-1]["train/lr"] == resumed.history[-1]["train/lr"]
