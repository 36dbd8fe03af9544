"""The LightningModule: a classifier network, its loss, optimiser and torchmetrics."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from scalelab.training.losses import loss_fn


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Accuracy and macro F1, named `<prefix>acc` and `<prefix>f1_macro`."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
        },
        prefix=prefix,
    )


class Classifier(pl.LightningModule):
    """Trains `net` on (x, y) batches; logs `train/*` and `val/*` once per epoch."""

    def __init__(self, net: nn.Module, num_classes: int, loss: str, optimizer: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.loss_name = loss
        self.optimizer_cfg = optimizer
        self.train_metrics = classification_metrics(num_classes, "train/")
        self.val_metrics = classification_metrics(num_classes, "val/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)  # (batch, num_classes)
        loss = loss_fn(self.loss_name, logits, y)
        metrics = self.train_metrics if split == "train" else self.val_metrics
        metrics.update(logits, y)
        # Epoch-level only: per-step logging costs a sync and a database write per batch.
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=split == "val")
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return instantiate(self.optimizer_cfg, params=self.parameters())
