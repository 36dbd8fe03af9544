"""The LightningModule: a classifier network, its loss, optimiser and torchmetrics."""

from __future__ import annotations

import functools
import math
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.callbacks import TQDMProgressBar
from torch import nn
from torchmetrics import Metric

from scalelab import interrupts
from scalelab.errors import TrainingDiverged
from scalelab.training import width_scaling
from scalelab.training.losses import loss_fn
from scalelab.training.saved import META_KEY


class EpochStats(Metric):
    """Sample-weighted mean loss and the (true, predicted) confusion matrix of one split.

    One torchmetrics Metric for both, updated once per group of steps: separate Accuracy, F1
    and MeanMetric objects cost ~5x more per update, ~17% of a seed-MLP step on this machine.
    Its states are summed across processes, so accuracy and F1 stay exact under DDP.
    """

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("confusion", torch.zeros(num_classes**2, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("loss_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, predicted: torch.Tensor, y: torch.Tensor, loss_sum: torch.Tensor) -> None:
        """Add samples: their predicted and true classes, and the sum of their losses."""
        # In place: rebinding a state (`+=`) goes through Metric.__setattr__, ~5 us each
        cells = (y * self.num_classes + predicted).flatten()  # a language model's: every token
        self.confusion.add_(torch.bincount(cells, minlength=self.num_classes**2))
        self.loss_sum.add_(loss_sum.detach())
        self.count.add_(len(y))

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


class EpochMetricsBar(TQDMProgressBar):
    """Lightning's progress bar, showing the latest epoch's `Classifier.epoch_metrics`."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return {**super().get_metrics(trainer, pl_module), **getattr(pl_module, "epoch_metrics", {})}


class Classifier(pl.LightningModule):
    """Trains `net` on (x, y) batches; logs `train/*` and `val/*` once per epoch.

    Fast on purpose, for small models where Lightning's per-step bookkeeping would cost as
    much as the step: metrics bypass `self.log` (each call costs ~3 ms in Lightning's result
    collection, ~4% of a seed-MLP epoch for six values), optimisation is manual (no closure
    machinery), and each training_step takes a group of batches, one optimiser step each, with
    one metric update and one finiteness check (one device sync on GPU) per group.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        loss: str,
        optimizer: dict[str, Any],
        lr_schedule: str = "constant",
        max_epochs: int = 1,
        meta: dict[str, Any] | None = None,
        width_ratio: float | None = None,
        gradient_clip_val: float | None = None,
        per_token: bool = False,
        total_steps: int = 1,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.net = net
        self.loss_name = loss
        self.optimizer_cfg = optimizer
        self.lr_schedule, self.max_epochs = lr_schedule, max_epochs
        self.train_stats, self.val_stats = EpochStats(num_classes), EpochStats(num_classes)
        self.epoch_metrics: dict[str, float] = {}  # the latest epoch's train/* and val/*
        self.meta = meta or {}  # what made this model: stored in every checkpoint
        self.width_ratio = width_ratio  # width / base_width under μP (width_scaling.py); None: off
        self.gradient_clip_val = gradient_clip_val  # the gradient's largest norm; None: not clipped
        self.per_token = per_token  # a character-level language model: also log bits per character
        self.total_steps, self.warmup_steps = total_steps, warmup_steps  # for lr_schedule=warmup_cosine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _log_epoch(self, split: str, **extra: float) -> None:
        """Into `epoch_metrics`, which MLflow (EpochCheckpoint) and the progress bar read, and, once
        an epoch through Lightning's own contract, into `trainer.callback_metrics`, which
        monitoring callbacks (EarlyStopping, ModelCheckpoint(monitor=...)) read."""
        stats = getattr(self, f"{split}_stats")
        metrics = {f"{split}/{k}": float(v) for k, v in stats.compute().items()} | extra
        if self.per_token:  # nats per character -> bits per character
            metrics[f"{split}/bpc"] = metrics[f"{split}/loss"] / math.log(2)
        stats.reset()
        self.epoch_metrics.update(metrics)
        self.log_dict(metrics, on_step=False, on_epoch=True)

    def training_step(self, group: list[tuple[torch.Tensor, torch.Tensor]], _: int) -> torch.Tensor:
        """One optimiser step per batch of the group (`Grouped`): as many as a plain loop takes."""
        optimizer = self.optimizers()
        predicted, losses = [], []
        for x, y in group:
            optimizer.zero_grad(set_to_none=True)
            logits = self.net(x)
            loss = loss_fn(self.loss_name, logits, y)
            self.manual_backward(loss)
            if self.gradient_clip_val is not None:  # manual optimisation: Lightning leaves it to us
                self.clip_gradients(optimizer, self.gradient_clip_val, gradient_clip_algorithm="norm")
            optimizer.step()
            if self.lr_schedule == "warmup_cosine":  # a per-step schedule: the next step's rate
                self.lr_schedulers().step()
            predicted.append(logits.detach().argmax(-1))
            losses.append(loss.detach())
            if interrupts.received():  # Ctrl-C or SIGTERM: StopOnSignal ends the training
                break
        stepped = group[: len(losses)]
        step_losses = torch.stack(losses)
        self._check_finite(step_losses)
        sizes = torch.tensor([len(y) for _, y in stepped], dtype=torch.float64, device=step_losses.device)
        labels = torch.cat([y for _, y in stepped])
        self.train_stats.update(torch.cat(predicted), labels, step_losses.double() @ sizes)
        return step_losses[-1]

    def _check_finite(self, step_losses: torch.Tensor) -> None:
        """Stop a training whose loss became NaN or infinite: every later step would be garbage."""
        finite = torch.isfinite(step_losses)
        if not finite.all():
            first = int((~finite).nonzero()[0])
            step = self.global_step - len(step_losses) + first
            raise TrainingDiverged(
                f"train/loss became {step_losses[first].item()} at step {step} (epoch "
                f"{self.current_epoch}); lower trainer.optimizer.lr or check the data"
            )

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.val_stats.update(logits.argmax(-1), y, loss_fn(self.loss_name, logits, y) * len(y))

    def on_train_epoch_end(self) -> None:
        # Monitoring callbacks run after this hook (Lightning orders them last); val/* of this
        # epoch is already there: validation runs when the epoch's last step is done.
        self._log_epoch("train", **{"train/lr": self.optimizers().param_groups[0]["lr"]})  # this epoch's
        if self.lr_schedule == "cosine":
            self.lr_schedulers().step()  # manual optimisation: Lightning leaves stepping to the module

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_epoch("val")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store `meta` under `META_KEY`, in weights-only checkpoints too (callbacks' hooks skip those)."""
        checkpoint[META_KEY] = self.meta

    def configure_optimizers(self) -> Any:
        if self.width_ratio is None:
            optimizer = instantiate(self.optimizer_cfg, params=self.parameters())
        else:
            lr = self.optimizer_cfg["lr"]
            groups = width_scaling.param_groups(self.net, lr, self.width_ratio)
            optimizer = instantiate({**self.optimizer_cfg, "_partial_": True})(groups)
        if self.lr_schedule == "constant":
            return optimizer
        # cosine: optimizer.lr in epoch 0, then down to ~0 in the last epoch; Lightning saves and
        # restores its state with the checkpoint, so a resume continues the same curve
        if self.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        else:
            factor = functools.partial(warmup_cosine, warmup=self.warmup_steps, total=self.total_steps)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.1) -> float:
    """The learning rate of optimiser step `step` (0-based) as a fraction of optimizer.lr: rising
    linearly to 1 over `warmup` steps, then a half cosine down to `floor` at step `total - 1`
    (GPT-3's warm-up; Hoffmann et al. 2022 decay 10x over the training)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
