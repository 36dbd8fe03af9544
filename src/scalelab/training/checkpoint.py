"""Lightning checkpointing that writes atomically and stores what made each checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from scalelab.training.saved import META_KEY


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save checkpointing, but via a temp file and rename: never torn."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


class Provenance(pl.Callback):
    """Stores `meta` (what made this checkpoint) in every checkpoint under `META_KEY`."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[META_KEY] = self.meta
