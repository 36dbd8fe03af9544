"""Fit one model with Lightning: seeded, checkpointed to a stable path, logged to MLflow."""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from torch import nn

from scalelab import interrupts
from scalelab.atomic import atomic_path
from scalelab.config import ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.errors import ConfigError
from scalelab.models import build, count_parameters, rung, scaling_params
from scalelab.models.flops import matmul_peak, training_flops_per_sample
from scalelab.readback import load_torch
from scalelab.training import width_scaling
from scalelab.training.budget import budget
from scalelab.training.checkpoints import BEST, LAST, AtomicCheckpointIO, EpochCheckpoint
from scalelab.training.module import Classifier, EpochMetricsBar
from scalelab.training.precision import LeanPrecision
from scalelab.training.resume import identity
from scalelab.training.saved import CHECKPOINT_FILE

# Lightning's start-up chatter that says nothing about this run: an advert, and a warning about
# per-step logging, which scalelab turns off on purpose (epoch-level metrics only).
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
    lambda record: not record.getMessage().startswith("💡 Tip")
)
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
# Under DDP Lightning asks for sync_dist on epoch metrics; ours are already summed over every
# process by torchmetrics (EpochStats), so another all-reduce would change nothing.
warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('(train|val)/")
# On a machine with SLURM's client tools, Lightning suggests srun for every local run; scalelab's
# way onto the cluster is hydra/launcher=slurm, whose jobs do run under srun.
warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")
# A resumed training finds its own epoch checkpoints in the folder ModelCheckpoint writes to.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


MONITOR = "val/loss"  # what early stopping watches and the kept weights minimise


@dataclass
class FitResult:
    """The trained network (best-validation weights), its metrics (MLflow names), where its
    checkpoint is, and every epoch's metrics."""

    net: nn.Module
    metrics: dict[str, float]
    checkpoint: Path
    first_step_at: float | None  # Unix time the first optimiser step began: start-up cost, measured
    history: list[dict[str, float]]  # index = epoch


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


class StaysStopped(EarlyStopping):
    """Lightning's EarlyStopping, which also holds when a training that it stopped is resumed.

    Lightning restores its state from the checkpoint (the epochs waited) but not the trainer's
    `should_stop`: a run killed after its last epoch (uploading its model, say) would train one
    more epoch on resume than the run that was never killed.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.wait_count >= self.patience:
            trainer.should_stop = True


def torch_threads(trainer_cfg: TrainerConfig) -> int | None:
    """Intra-op threads for this process: `trainer.num_threads`, else the CPUs a scheduler gave
    the job (SLURM's --cpus-per-task), shared among the job's CPU training processes.

    Without this, torch sizes its pool to every core of the node in every process: several jobs
    or DDP processes on one node would fight over the cores. None: leave torch's default.
    """
    if trainer_cfg.num_threads:
        return trainer_cfg.num_threads
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    cpus = int(slurm) if slurm.isdigit() else None
    if trainer_cfg.accelerator == "cpu" and trainer_cfg.devices > 1:
        return max(1, (cpus or len(os.sched_getaffinity(0))) // trainer_cfg.devices)
    return cpus


def fit(
    model_cfg: ModelConfig,
    trainer_cfg: TrainerConfig,
    data: PreparedDataModule,
    *,
    seed: int,
    out_dir: Path,
    checkpoints: Path | None = None,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    callbacks: list[pl.Callback] | None = None,
    loggers: list[Any] | None = None,
) -> FitResult:
    """Train `model_cfg` on `data` per `trainer_cfg`; the best-validation weights end up in
    `out_dir/model.ckpt` and in the returned network.

    Every epoch is checkpointed and logged to MLflow run `run_id` if given. With a
    `checkpoints` folder, the epoch checkpoints go there and a training that left one is
    resumed from it; without, they go to a scratch folder in `out_dir` that is removed after.
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    if threads := torch_threads(trainer_cfg):
        torch.set_num_threads(threads)
    manifest = data.manifest
    net = build(model_cfg, manifest["input_shape"], manifest["num_classes"])
    width_ratio = None
    if trainer_cfg.lr_scaling == "mup":
        width = rung(model_cfg).get("width")
        if not isinstance(width, int):
            raise ConfigError(
                f"trainer.lr_scaling=mup scales rates by each rung's width, and model {model_cfg.name}'s "
                f"rung {model_cfg.size} has none; give its rungs a `width` or use trainer.lr_scaling=constant"
            )
        width_ratio = width / trainer_cfg.base_width
        width_scaling.prepare(net, width_ratio)
    meta = {**identity(model_cfg, trainer_cfg, manifest, seed), "loss": trainer_cfg.loss, "run_id": run_id}
    text = manifest.get("kind") == "text"
    train_size = data.train_samples or manifest["splits"]["train"]["count"]
    world = trainer_cfg.devices if trainer_cfg.strategy == "ddp" else 1
    length = budget(trainer_cfg, train_size, manifest["input_shape"][0] if text else None, world)
    data.max_steps = length.steps
    module = Classifier(
        net,
        manifest["num_classes"],
        trainer_cfg.loss,
        trainer_cfg.optimizer,
        trainer_cfg.lr_schedule,
        trainer_cfg.max_epochs,
        meta,
        width_ratio,
        trainer_cfg.gradient_clip_val,
        per_token=text,
        total_steps=length.total_steps,
        warmup_steps=trainer_cfg.warmup_steps,
    )
    history = None
    if run_id and tracking_uri:
        from scalelab.tracking.history import RunHistory  # MLflow only when logging

        history = RunHistory(tracking_uri, run_id)
    final = out_dir / CHECKPOINT_FILE
    scratch = checkpoints or out_dir / ".training"
    epochs = EpochCheckpoint(scratch / LAST, history)
    stopping = trainer_cfg.early_stopping
    best = best_weights(scratch)
    trainer = pl.Trainer(
        max_epochs=length.epochs,
        # a token budget cuts its last epoch short: that epoch's loader must know its length
        reload_dataloaders_every_n_epochs=1 if length.steps is not None else 0,
        accelerator=trainer_cfg.accelerator,
        devices=trainer_cfg.devices,
        strategy=trainer_cfg.strategy,
        # BatchNorm over the whole batch, as one process would (torch has SyncBatchNorm for GPUs
        # only: on CPU each process normalises its share)
        sync_batchnorm=trainer_cfg.devices > 1 and trainer_cfg.accelerator == "gpu",
        deterministic=trainer_cfg.deterministic,
        # MLflow gets whole epochs from EpochCheckpoint (tracking/history.py); Lightning's own
        # loggers only when the config adds some (logger=csv: training/addons.py)
        logger=loggers or False,
        callbacks=[
            *([StaysStopped(MONITOR, stopping.min_delta, stopping.patience)] if stopping.enabled else []),
            best,  # before `epochs`: the resumable checkpoint then holds this epoch's best
            epochs,
            StopOnSignal(),
            clock := FirstStepClock(),
            *([EpochMetricsBar()] if trainer_cfg.progress_bar else []),
            *(callbacks or []),
        ],
        plugins=[AtomicCheckpointIO(), precision_plugin(trainer_cfg)],
        enable_progress_bar=trainer_cfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    resume = checkpoints is not None and epochs.path.is_file()
    trainer.fit(module, datamodule=data, ckpt_path=epochs.path if resume else None)
    interrupts.check()  # stopped early by a signal: not a finished training
    best_epoch = load_best(net, Path(best.best_model_path))
    stopped_epoch = len(epochs.history) - 1
    total, trainable = count_parameters(net)
    params = scaling_params(net)  # N of the law: all of them, or what the family counts (gpt)
    if length.steps is None:
        samples = len(epochs.history) * train_size
    else:  # the epoch a token budget cut short saw only its full batches
        samples = length.samples_seen(trainer.global_step, train_size, trainer_cfg.batch_size)
    flops_per_sample = training_flops_per_sample(net, manifest["input_shape"])
    # Counts, throughput and how training ended, logged once: the per-epoch metrics are in the run.
    summary = {
        "model/params": params,
        "model/total_params": total,
        "model/trainable_params": trainable,
        "model/flops_per_sample": flops_per_sample,
        "train/flops": flops_per_sample * samples,
        "train/samples_seen": samples,
        **(
            throughput(flops_per_sample, manifest["input_shape"][0], samples, epochs.seconds, trainer)
            if text
            else {}
        ),
        "data/train_samples": train_size,  # D of a joint law L(N, D): the training set's size
        **({"data/train_tokens": train_size * manifest["input_shape"][0]} if text else {}),  # D in tokens
        "train/seconds": epochs.seconds,
        "train/samples_per_second": samples / epochs.seconds,
        "train/best_epoch": best_epoch,
        "train/stopped_epoch": stopped_epoch,
    }
    if length.steps is None:  # a token budget is the study's design, not a run left unfinished
        # still improving when the budget ran out: no epoch of the last `patience` beat the best
        summary["train/converged"] = float(stopped_epoch - best_epoch >= stopping.patience)
    if history:
        history.log_once(summary, step=stopped_epoch)
    if trainer.is_global_zero:  # DDP: one process writes
        with atomic_path(final) as tmp:
            shutil.copyfile(best.best_model_path, tmp)
        if checkpoints is None:
            shutil.rmtree(scratch)
    # The evaluated model's own epoch: its validation metrics, not the last epoch's.
    metrics = {**epochs.history[best_epoch], **summary}
    return FitResult(net.eval(), metrics, final, clock.at, epochs.history)


def throughput(
    flops_per_sample: int, context: int, samples: int, seconds: float, trainer: pl.Trainer
) -> dict[str, float]:
    """A language model's speed: tokens, tokens per second, and model FLOP utilisation (MFU:
    the model's FLOPs per second over the measured matmul rate of the devices it trained on, in
    the training's precision)."""
    dtype = torch.bfloat16 if "bf16" in str(trainer.precision) else torch.float32
    peak = matmul_peak(str(trainer.lightning_module.device), dtype) * trainer.world_size
    tokens = samples * context
    return {
        "train/tokens": tokens,
        "train/tokens_per_second": tokens / seconds,
        "train/mfu": flops_per_sample * samples / seconds / peak,
        "machine/matmul_flops_per_second": peak,
    }


def precision_plugin(trainer_cfg: TrainerConfig) -> Precision:
    """32-bit: Lightning's, without the per-step hooks nothing listens to (`LeanPrecision`);
    bf16-mixed: Lightning's autocast to bfloat16, on the CPU or the GPU the trainer uses."""
    if trainer_cfg.precision == "32-true":
        return LeanPrecision()
    device = "cuda" if trainer_cfg.accelerator in ("gpu", "cuda") else "cpu"
    return MixedPrecision(trainer_cfg.precision, device)  # type: ignore[arg-type]


def best_weights(folder: Path) -> ModelCheckpoint:
    """Lightning's ModelCheckpoint keeping the weights of the lowest `val/loss` in `folder/best.ckpt`."""
    return ModelCheckpoint(
        dirpath=folder,
        filename=BEST.removesuffix(".ckpt"),
        monitor=MONITOR,
        mode="min",
        save_top_k=1,
        save_weights_only=True,  # weights, epoch and provenance (Classifier.on_save_checkpoint)
        enable_version_counter=False,  # one file, replaced on every new best
    )


def load_best(net: nn.Module, path: Path) -> int:
    """Load the best checkpoint's weights into `net`; return the epoch they come from."""
    checkpoint = load_torch(path, keys=("state_dict", "epoch"))
    net.load_state_dict({k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items()})
    return int(checkpoint["epoch"])
