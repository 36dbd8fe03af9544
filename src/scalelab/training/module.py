"""The LightningModule: a classifier network, its loss, optimiser and torchmetrics."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import Metric

from scalelab.errors import TrainingDiverged
from scalelab.training.losses import loss_fn


class EpochStats(Metric):
    """Sample-weighted mean loss and the (true, predicted) confusion matrix of one split.

    One torchmetrics Metric for both, updated once per step: separate Accuracy, F1 and
    MeanMetric objects cost ~5x more per update, ~17% of a seed-MLP step on this machine.
    Its states are summed across processes, so accuracy and F1 stay exact under DDP.
    """

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("confusion", torch.zeros(num_classes**2, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("loss_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> None:
        cells = y * self.num_classes + logits.argmax(-1)
        self.confusion += torch.bincount(cells, minlength=self.num_classes**2)
        self.loss_sum += loss.detach().double() * len(y)
        self.count += len(y)

    def compute(self) -> dict[str, torch.Tensor]:
        """`loss`, `acc` and `f1_macro` (as torchmetrics' micro accuracy and macro F1 define them)."""
        return {
            "loss": self.loss_sum / self.count,
            **scores(self.confusion.view(self.num_classes, self.num_classes)),
        }


def scores(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy and macro F1 from a (true, predicted) confusion matrix.

    Matches MulticlassAccuracy(average="micro") and MulticlassF1Score(average="macro"), which
    leave classes that are neither present nor predicted out of the mean
    (tests/training/test_module.py checks both).
    """
    confusion = confusion.double()
    true_pos = confusion.diagonal()
    support, predicted = confusion.sum(1), confusion.sum(0)
    f1 = 2 * true_pos / (support + predicted)
    present = (support + predicted) > 0
    return {"acc": true_pos.sum() / confusion.sum(), "f1_macro": f1[present].mean()}


class Classifier(pl.LightningModule):
    """Trains `net` on (x, y) batches; logs `train/*` and `val/*` once per epoch.

    Fast on purpose, for small models where Lightning's per-step bookkeeping would cost as
    much as the step: metrics are updated every step but handed to `self.log` only at epoch
    end (each `self.log` call costs ~1 ms), optimisation is manual (no closure machinery), and
    each training_step takes a group of batches, one optimiser step each.
    """

    def __init__(self, net: nn.Module, num_classes: int, loss: str, optimizer: dict[str, Any]) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.net = net
        self.loss_name = loss
        self.optimizer_cfg = optimizer
        self.train_stats, self.val_stats = EpochStats(num_classes), EpochStats(num_classes)
        self.epoch_metrics: dict[str, float] = {}  # the latest epoch's train/* and val/*

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)  # (batch, num_classes)
        loss = loss_fn(self.loss_name, logits, y)
        with torch.no_grad():
            getattr(self, f"{split}_stats").update(logits, y, loss)
        return loss

    def _log_epoch(self, split: str) -> None:
        stats = getattr(self, f"{split}_stats")
        values = {f"{split}/{k}": v for k, v in stats.compute().items()}
        self.epoch_metrics.update({k: float(v) for k, v in values.items()})
        self.log_dict(values, prog_bar=True)  # the progress bar; MLflow gets epoch_metrics
        stats.reset()

    def training_step(self, group: list[tuple[torch.Tensor, torch.Tensor]], _: int) -> torch.Tensor:
        """One optimiser step per batch of the group (`Grouped`): as many as a plain loop takes."""
        optimizer = self.optimizers()
        for batch in group:
            optimizer.zero_grad(set_to_none=True)
            loss = self._step(batch, "train")
            if not torch.isfinite(loss):  # stop at once: every later step would be garbage
                raise TrainingDiverged(
                    f"train/loss became {loss.item()} at step {self.global_step} (epoch "
                    f"{self.current_epoch}); lower trainer.optimizer.lr or check the data"
                )
            self.manual_backward(loss)
            optimizer.step()
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self._step(batch, "val")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_epoch("val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return instantiate(self.optimizer_cfg, params=self.parameters())
