"""Resumable training: which epoch checkpoint (`training.checkpoints`) a rerun continues from.

A killed training (even `kill -9`) rerun with the same command finds its last complete
checkpoint by *identity* — everything that decides the weights — and continues from it into
the MLflow run id stored with it. The checkpoints live in `checkpoints/<key>-<identity>/`
under the project root ($DVC_ROOT for DVC, so queued experiments find theirs too), outside
DVC's outputs: DVC deletes a stage's outputs before running it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalelab.config import ModelConfig, TrainerConfig, as_dict
from scalelab.readback import load_torch
from scalelab.training.checkpoints import LAST, EpochCheckpoint
from scalelab.training.saved import META_KEY

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


def digest(ident: dict[str, Any]) -> str:
    """12 hex digits that name an identity."""
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def checkpoint_dir(key: str, ident: dict[str, Any]) -> Path:
    """`checkpoints/<key>-<12 hex of the identity>/` under the project root."""
    return Path(os.environ.get("DVC_ROOT", ".")) / "checkpoints" / f"{key}-{digest(ident)}"


def search_dir(key: str) -> Path:
    """`checkpoints/<key>-lr-search/`: a learning-rate search's finished trials until it ends,
    so that a search killed midway keeps them (`training.recorded`)."""
    return Path(os.environ.get("DVC_ROOT", ".")) / "checkpoints" / f"{key}-lr-search"


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
