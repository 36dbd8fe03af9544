"""Checkpoints written during training: one per epoch end, resumable, and never torn.

What a resume does with them (which checkpoint belongs to which training) is `training.resume`;
reading the final network back, `training.saved`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint

from scalelab import atomic, interrupts

if TYPE_CHECKING:
    from scalelab.tracking.history import RunHistory

LAST = "last.ckpt"  # the latest epoch, resumable: weights, optimiser, loops, callbacks' state
BEST = "best.ckpt"  # the weights of the lowest val/loss so far


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save checkpointing, but through `atomic.atomic_path`: never torn."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        with atomic.atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class EpochCheckpoint(Checkpoint):
    """At each epoch end: save a resumable checkpoint (atomically), then log the epoch to MLflow.

    In that order a kill between the two leaves an epoch saved but not logged, which the
    resumed training logs first (`on_fit_start`): the run's history has no gap and no duplicate.
    A `Checkpoint` subclass, so Lightning calls it after the module's `on_train_epoch_end`.
    """

    def __init__(self, path: Path, history: RunHistory | None = None) -> None:
        self.path, self.run_history = path, history
        self.history: list[dict[str, float]] = []  # index = epoch
        self.seconds = 0.0  # training time summed over every process that worked on this model
        self._epoch_start = 0.0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.run_history and self.history:
            self.run_history.fill(self.history)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if interrupts.received():  # StopOnSignal cut this epoch short: keep the last complete one
            return
        self.seconds += time.perf_counter() - self._epoch_start
        self.history.append(dict(pl_module.epoch_metrics))
        trainer.save_checkpoint(self.path, weights_only=False)  # resumable: optimiser and loops too
        if self.run_history:
            self.run_history.log({len(self.history) - 1: self.history[-1]}, wait=False)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, error: BaseException) -> None:
        if self.run_history:  # the epochs logged so far reach the run before it is marked FAILED or KILLED
            with contextlib.suppress(Exception):  # the training's own error is the one to report
                self.run_history.flush()

    def state_dict(self) -> dict[str, Any]:
        # The random state too: dropout draws from it, and Lightning's checkpoints do not keep it.
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {
            "history": self.history,
            "seconds": self.seconds,
            "rng": torch.get_rng_state(),
            "cuda_rng": cuda,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history, self.seconds = list(state_dict["history"]), float(state_dict["seconds"])
        torch.set_rng_state(state_dict["rng"])
        if state_dict["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda_rng"])
