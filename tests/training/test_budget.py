"""A language model's token budget: exactly ceil(tokens / (batch x context)) optimiser steps, the
last epoch cut short and still validated, under a warm-up + cosine schedule per step."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from scalelab.config import ModelConfig, TrainerConfig
from scalelab.data.datamodule import InMemoryBatches, PreparedDataModule, steps_per_epoch
from scalelab.errors import ConfigError
from scalelab.training.budget import budget
from scalelab.training.fit import fit
from scalelab.training.module import warmup_cosine

GPT = ModelConfig(
    _target_="scalelab.models.gpt.gpt",
    name="gpt",
    size="t",
    ladder={"t": {"width": 16, "depth": 1}},
    init="torch_default",
)


def test_a_budget_is_steps_and_the_epochs_that_hold_them() -> None:
    trainer = TrainerConfig(batch_size=64, max_tokens=2_500_000)
    length = budget(trainer, 7842, context=128)
    assert length.steps == math.ceil(2_500_000 / (64 * 128)) == 306
    assert length.per_epoch == steps_per_epoch(7842, 64) == 123  # 122 full batches and one of 34
    assert length.epochs == 3 and length.total_steps == 306
    assert length.samples_seen(306, 7842, 64) == 2 * 7842 + 60 * 64, "the cut epoch: 60 full batches"
    whole = budget(TrainerConfig(batch_size=64, max_epochs=4), 7842, context=None)
    assert (whole.epochs, whole.steps, whole.total_steps) == (4, None, 4 * 123)


def test_a_token_budget_on_data_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"trainer.max_tokens=1000 counts a language model's tokens"):
        budget(TrainerConfig(max_tokens=1000), 100, context=None)


def test_the_epoch_a_budget_reaches_is_cut_and_later_ones_are_empty() -> None:
    x = torch.arange(100).view(100, 1)
    batches = InMemoryBatches(x, x, batch_size=10, shuffle=True, max_batches=25)
    lengths = []
    for epoch in range(4):
        batches.set_epoch(epoch)
        lengths.append((len(batches), sum(1 for _ in batches)))
    assert lengths == [(10, 10), (10, 10), (5, 5), (0, 0)]


def test_warmup_then_cosine_down_to_a_tenth() -> None:
    rates = [warmup_cosine(step, warmup=10, total=111) for step in range(111)]  # 100 steps down
    assert rates[:10] == pytest.approx([(s + 1) / 10 for s in range(10)]), "linear from the first step"
    assert rates[10] == 1.0 and rates[-1] == pytest.approx(0.1) and rates[60] == pytest.approx(0.55)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:])), "then only down"


def test_a_token_budget_trains_exactly_its_steps_and_validates_the_cut_epoch(
    tiny_text: Path, tmp_path: Path
) -> None:
    trainer = TrainerConfig(
        batch_size=32,
        max_tokens=48_600,  # 95 steps of 32 x 16 tokens: one epoch of 68, then 27 of the next
        lr_schedule="warmup_cosine",
        warmup_steps=10,
        optimizer={"_target_": "torch.optim.AdamW", "lr": 3e-3},
        progress_bar=False,
    )
    data = PreparedDataModule(tiny_text, trainer.batch_size, 0, 8)
    train_size = data.manifest["splits"]["train"]["count"]
    assert steps_per_epoch(train_size, 32) == 68
    result = fit(GPT, trainer, data, seed=0, out_dir=tmp_path / "out")
    assert len(result.history) == 2, "the cut epoch was validated too"
    assert result.metrics["train/samples_seen"] == train_size + 27 * 32
    assert result.metrics["train/tokens"] == (train_size + 27 * 32) * 16
    assert result.history[-1]["train/lr"] == pytest.approx(3e-3 * 0.1), "the schedule ended at its floor"
    assert result.metrics["val/bpc"] == pytest.approx(result.metrics["val/loss"] / math.log(2))
    assert "train/converged" not in result.metrics, "a fixed token budget is not judged as unfinished"
    m = result.metrics
    assert m["train/tokens_per_second"] == pytest.approx(m["train/tokens"] / m["train/seconds"])
    achieved = m["model/flops_per_sample"] * m["train/samples_seen"] / m["train/seconds"]
    assert m["train/mfu"] == pytest.approx(achieved / m["machine/matmul_flops_per_second"])
    assert 0 < m["train/mfu"] < 1, "a tiny model uses a fraction of the measured matmul rate"
