"""Fit one model with Lightning: seeded, checkpointed to a stable path, logged to MLflow."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger
from torch import nn

from scalelab import interrupts
from scalelab.config import ModelConfig, TrainerConfig, as_dict
from scalelab.data.datamodule import PreparedDataModule
from scalelab.models import build, count_parameters
from scalelab.models.flops import training_flops_per_sample
from scalelab.training.checkpoint import AtomicCheckpointIO, Provenance
from scalelab.training.module import Classifier
from scalelab.training.saved import CHECKPOINT_FILE

# Lightning's start-up chatter that says nothing about this run: an advert, and a warning about
# per-step logging, which scalelab turns off on purpose (epoch-level metrics only).
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
    lambda record: not record.getMessage().startswith("💡 Tip")
)
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
# Checkpoints live at stable paths on purpose (models/<size>-s<seed>/): rerunning overwrites them.
warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


@dataclass
class FitResult:
    """The trained network, its final metrics (MLflow names) and where its checkpoint is."""

    net: nn.Module
    metrics: dict[str, float]
    checkpoint: Path
    first_step_at: float | None  # Unix time the first optimiser step began: start-up cost, measured


class StopOnSignal(pl.Callback):
    """Ends training after the current step once Ctrl-C or SIGTERM has been noted."""

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if interrupts.received():
            trainer.should_stop = True


class FirstStepClock(pl.Callback):
    """Notes the wall-clock time at which training proper begins."""

    at: float | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if self.at is None:
            self.at = time.time()


def fit(
    model_cfg: ModelConfig,
    trainer_cfg: TrainerConfig,
    data: PreparedDataModule,
    *,
    seed: int,
    out_dir: Path,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    callbacks: list[pl.Callback] | None = None,
) -> FitResult:
    """Train `model_cfg` on `data` per `trainer_cfg`; log epochs to MLflow run `run_id` if given."""
    pl.seed_everything(seed, workers=True, verbose=False)
    if trainer_cfg.num_threads is not None:
        torch.set_num_threads(trainer_cfg.num_threads)
    manifest = data.manifest
    net = build(model_cfg, manifest["input_shape"], manifest["num_classes"])
    module = Classifier(net, manifest["num_classes"], trainer_cfg.loss, trainer_cfg.optimizer)
    meta = {
        "model": as_dict(model_cfg),
        "input_shape": manifest["input_shape"],
        "num_classes": manifest["num_classes"],
        "loss": trainer_cfg.loss,
        "dataset_fingerprint": manifest["fingerprint"],
        "seed": seed,
        "run_id": run_id,
    }
    logger: MLFlowLogger | bool = MLFlowLogger(tracking_uri=tracking_uri, run_id=run_id) if run_id else False
    checkpoint = ModelCheckpoint(
        dirpath=out_dir, filename=Path(CHECKPOINT_FILE).stem, enable_version_counter=False
    )
    trainer = pl.Trainer(
        max_epochs=trainer_cfg.max_epochs,
        accelerator=trainer_cfg.accelerator,
        devices=trainer_cfg.devices,
        deterministic=trainer_cfg.deterministic,
        logger=logger,
        callbacks=[
            checkpoint,
            Provenance(meta),
            StopOnSignal(),
            clock := FirstStepClock(),
            *(callbacks or []),
        ],
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=trainer_cfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    interrupts.check()  # stopped early by a signal: not a finished training
    seconds = time.perf_counter() - start
    total, trainable = count_parameters(net)
    samples = trainer.max_epochs * len(data.splits["train"][1])
    flops_per_sample = training_flops_per_sample(net, manifest["input_shape"])
    # Counts and throughput, logged once: the per-epoch metrics are already in the run.
    summary = {
        "model/params": total,
        "model/trainable_params": trainable,
        "model/flops_per_sample": flops_per_sample,
        "train/flops": flops_per_sample * samples,
        "train/samples_seen": samples,
        "train/seconds": seconds,
        "train/samples_per_second": samples / seconds,
    }
    for run_logger in trainer.loggers:
        run_logger.log_metrics(summary, step=trainer.global_step)
    metrics = {**_final_metrics(trainer.callback_metrics), **summary}
    return FitResult(net.eval(), metrics, out_dir / CHECKPOINT_FILE, clock.at)


def _final_metrics(callback_metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(callback_metrics.items()) if "/" in k}
