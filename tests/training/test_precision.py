"""The lean precision plugin skips only the per-step hooks nobody implements."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from scalelab.config import ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.training.fit import fit

MODEL = ModelConfig(size="s", ladder={"s": {"width": 16, "depth": 1}})


class HookCounter(pl.Callback):
    """Counts the per-step hooks Lightning dispatches to it, and the optimiser steps."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def on_before_backward(self, *_: Any) -> None:
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, *_: Any) -> None:
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, *_: Any) -> None:
        self.calls["on_before_optimizer_step"] += 1

    def on_train_end(self, trainer: pl.Trainer, *_: Any) -> None:
        self.calls["optimiser steps"] = trainer.global_step


def test_a_callback_with_per_step_hooks_sees_every_optimiser_step(digits: Path, tmp_path: Path) -> None:
    trainer = TrainerConfig(max_epochs=2, batch_size=64, progress_bar=False)
    counter = HookCounter()
    data = PreparedDataModule(digits, trainer.batch_size, 0, trainer.steps_per_call)
    fit(MODEL, trainer, data, seed=0, out_dir=tmp_path, callbacks=[counter])
    steps = 2 * -(-1293 // 64)  # every batch of the digits train split, twice
    assert counter.calls == {
        "on_before_backward": steps,
        "on_after_backward": steps,
        "on_before_optimizer_step": steps,
        "optimiser steps": steps,
    }
