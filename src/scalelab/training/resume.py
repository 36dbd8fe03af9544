"""Resumable training: a checkpoint at every epoch end, kept until the run is safely finished.

A killed training (even `kill -9`) rerun with the same command finds its last complete
checkpoint by *identity* — everything that decides the weights — and continues from it into
the MLflow run id stored with it. The checkpoints live in `checkpoints/<key>-<identity>/`
under the project root ($DVC_ROOT for DVC, so queued experiments find theirs too), outside
DVC's outputs: DVC deletes a stage's outputs before running it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from scalelab import interrupts
from scalelab.config import ModelConfig, TrainerConfig, as_dict
from scalelab.readback import load_torch
from scalelab.training.saved import META_KEY

if TYPE_CHECKING:
    from scalelab.tracking.history import RunHistory

LAST = "last.ckpt"  # the latest epoch, resumable: weights, optimiser, loops, callbacks' state
BEST = "best.ckpt"  # the weights of the lowest val/loss so far
# Trainer settings that change speed, not the updates: a resume may change them.
# DDP splits each batch among the processes (data/datamodule.py): the same updates, so the
# process count is a runtime choice too.
RUNTIME_ONLY = ("progress_bar", "num_threads", "steps_per_call", "accelerator", "devices", "strategy")


def identity(
    model_cfg: ModelConfig,
    trainer_cfg: TrainerConfig,
    manifest: dict[str, Any],
    seed: int,
    train_samples: int | None = None,
) -> dict[str, Any]:
    """What decides a training's weights: model, optimisation, data (by fingerprint, and how
    much of it) and seed."""
    trainer = {k: v for k, v in as_dict(trainer_cfg).items() if k not in RUNTIME_ONLY}
    subset = {} if train_samples is None else {"train_samples": train_samples}
    return subset | {
        "model": as_dict(model_cfg),
        "trainer": trainer,
        "input_shape": manifest["input_shape"],
        "num_classes": manifest["num_classes"],
        "dataset_fingerprint": manifest["fingerprint"],
        "seed": seed,
    }


def checkpoint_dir(key: str, ident: dict[str, Any]) -> Path:
    """`checkpoints/<key>-<12 hex of the identity>/` under the project root."""
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    return Path(os.environ.get("DVC_ROOT", ".")) / "checkpoints" / f"{key}-{digest}"


@dataclass
class Previous:
    """A checkpoint left by an unfinished training of the same identity."""

    path: Path
    run_id: str | None
    epochs_done: int


def previous(folder: Path) -> Previous | None:
    """The last complete checkpoint in `folder`, if a training left one."""
    path = folder / LAST
    if not path.is_file():
        return None
    # mmap: only the few bytes of metadata read here leave the disk, not the weights and Adam state
    checkpoint = load_torch(path, keys=("callbacks", META_KEY), mmap=True)
    history = checkpoint["callbacks"][EpochCheckpoint.__qualname__]["history"]
    return Previous(path, checkpoint[META_KEY].get("run_id"), len(history))


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
