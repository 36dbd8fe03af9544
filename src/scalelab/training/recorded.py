"""One rung and seed trained as a recorded run: resumed if a killed run left a checkpoint, logged
to MLflow, its model in `models/<size>/s<seed>/` and its reports in `reports/train/<size>/s<seed>/`.

With `trainer.lr_search`, the run is a learning-rate search: one trial per rate, each its own
MLflow run (tag `lr_search.lr`), and the trial with the lowest validation loss is the rung's
run: its weights are the ones evaluated, and every trial's outcome is in `lr_search.json`.
Choosing by validation loss per rung is the simplest of the per-width tunings Porian et al.
(2024) show a scaling law needs; the test split is never looked at.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytorch_lightning.utilities import rank_zero_only

from scalelab import atomic, compute_budget, paths
from scalelab.config import Config
from scalelab.data.datamodule import PreparedDataModule
from scalelab.readback import read_json
from scalelab.tracking import logged_models, runs, sweeps
from scalelab.tracking.names import run_name
from scalelab.tracking.store import mlflow_client, resolve_uri
from scalelab.training import addons, resume, sweep_retry
from scalelab.training.fit import fit
from scalelab.training.saved import CHECKPOINT_FILE

LR_SEARCH_FILE = "lr_search.json"
TRIAL_FILE = "trial.json"  # a finished trial of a search: its Trained, kept until the search ends


@dataclass
class Trained:
    """A finished training: its MLflow run and the metrics of its best-validation weights."""

    run_id: str
    metrics: dict[str, float]
    first_step_at: float
    history: list[dict[str, float]]  # the metrics of each epoch


def train_seed(config: Config) -> float | None:
    """Train `config`'s rung and seed (searching the learning rate if asked); write its reports.
    Return the run's best validation loss (None in a DDP process other than rank zero)."""
    config = compute_budget.resolve(config)  # a budget buys its rung a training-set size
    size, seed, samples, variant = config.model.size, config.seed, config.data.train_samples, config.variant
    out_dir = paths.model_dir(size, seed, samples, variant)
    key = paths.run_key(size, seed, samples, variant)
    if (parent := os.environ.get(sweeps.SWEEP_PARENT_ENV)) and (done := sweep_retry.finished_before(config)):
        sweeps.adopt(config, parent, done.run_ids)
        print(f"trained {key} before, in an earlier try of this sweep: run {done.run_id} adopted")
        return done.val_loss
    if config.trainer.lr_search:
        trained, trials = _search(config, out_dir)
    else:
        trained, trials = _train(config, out_dir), None
    if trained is None:  # a DDP process other than rank zero: rank zero reports
        return None
    out = paths.train_reports(size, seed, samples=samples, variant=variant)
    atomic.write_json(out / "train_metrics.json", trained.metrics)
    write_history(paths.history_file(size, seed, samples=samples, variant=variant), trained.history)
    run = {
        "run_id": trained.run_id,
        "size": size,
        "seed": seed,
        "first_step_at": trained.first_step_at,
        "identity": sweep_retry.identity_digest(config),  # what a sweep run again compares
    }
    if samples is not None:
        run["train_samples"] = samples
    if config.data.compute_budget is not None:  # the FLOPs that bought them: an IsoFLOP profile's C
        run["compute_budget"] = config.data.compute_budget
    if variant:
        run["variant"] = variant
    if trials is not None:
        run["trial_run_ids"] = [trial["run_id"] for trial in trials]
        run["lr_grid"] = [trial["lr"] for trial in trials]  # the rates tried, extensions too
        atomic.write_json(out / LR_SEARCH_FILE, trials)
    atomic.write_json(out / sweep_retry.RUN_FILE, run)
    if trials is not None:  # reported: the search's trials are no longer needed to resume it
        shutil.rmtree(resume.search_dir(key), ignore_errors=True)
    acc = trained.metrics["val/acc"]
    print(f"trained {key}: val/acc={acc:.4f}, run {trained.run_id}")
    return trained.metrics["val/loss"]


def _train(
    config: Config, out_dir: Path, name: str | None = None, tags: dict[str, str] | None = None
) -> Trained | None:
    """One training into `out_dir/model.ckpt`, resuming the checkpoint a killed one left."""
    seed, trainer, samples = config.seed, config.trainer, config.data.train_samples
    key = paths.run_key(config.model.size, seed, samples, config.variant)
    data = PreparedDataModule(
        paths.prepared_dir(config.data.name),
        trainer.batch_size,
        seed,
        trainer.steps_per_call,
        train_samples=samples,
    )
    checkpoints = resume.checkpoint_dir(
        key, resume.identity(config.model, trainer, data.manifest, seed, samples)
    )
    run = name or run_name(config)
    train = functools.partial(
        fit,
        config.model,
        trainer,
        data,
        seed=seed,
        out_dir=out_dir,
        checkpoints=checkpoints,
        callbacks=addons.callbacks(config.callbacks, run),
        loggers=addons.loggers(config.logger, run),
    )
    if rank_zero_only.rank != 0:
        train()
        return None
    previous = resume.previous(checkpoints)
    if previous:
        print(f"resuming {key} after epoch {previous.epochs_done} from {previous.path}")
    fingerprint = data.manifest["fingerprint"]
    with runs.training_run(config, fingerprint, previous and previous.run_id, name, tags) as run_id:
        if not (previous and previous.run_id == run_id):  # a resumed run has its inputs already
            runs.log_datasets(data.folder, data.manifest, samples)
        result = train(tracking_uri=resolve_uri(config.tracking), run_id=run_id)
        if config.tracking.log_model and data.manifest.get("kind") == "text":
            from scalelab.text_evaluation import fixed_prompt
            from scalelab.tracking.text_generator import log_text_model

            log_text_model(result.checkpoint, data.manifest, fixed_prompt(data.folder, data.manifest))
        elif config.tracking.log_model:
            logged_models.log_model(result.net, data.splits["val"][0][:8])
    shutil.rmtree(checkpoints)  # the run is finished: nothing left to resume
    return Trained(run_id, result.metrics, result.first_step_at, result.history)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """One CSV row per epoch (`epoch`, then each metric): what `dvc plots` draws per run."""
    columns = ["epoch", *dict.fromkeys(key for epoch in history for key in epoch)]
    atomic.write_csv(path, ({"epoch": epoch, **metrics} for epoch, metrics in enumerate(history)), columns)


def with_lr(config: Config, lr: float) -> Config:
    """`config` as one trial of its learning-rate search: optimizer.lr = `lr`, no search."""
    trainer = dataclasses.replace(
        config.trainer, optimizer={**config.trainer.optimizer, "lr": lr}, lr_search=[], lr_search_extend=0
    )
    return dataclasses.replace(config, trainer=trainer)


def _finished_trial(config: Config, folder: Path) -> Trained | None:
    """The trial in `folder` (named by its identity) that an earlier, stopped try of its search
    finished: its record and weights are there, and its MLflow run is FINISHED with its model."""
    from mlflow.exceptions import MlflowException

    if not (folder / TRIAL_FILE).is_file() or not (folder / CHECKPOINT_FILE).is_file():
        return None
    record = read_json(folder / TRIAL_FILE, ["run_id", "metrics", "first_step_at", "history"])
    uri = resolve_uri(config.tracking)
    try:
        run = mlflow_client(uri).get_run(record["run_id"])
    except MlflowException:  # another store's, or deleted: train it again
        return None
    if run.info.status != "FINISHED":
        return None
    if config.tracking.log_model and logged_models.complete_model(uri, record["run_id"]) is None:
        return None
    return Trained(**record)


def rate_beyond(grid: list[float], losses: dict[float, float]) -> float | None:
    """The next rate to try when the lowest loss of `losses` ({rate: val/loss}: the grid's rates
    and any added) is at an end of the rates tried: the grid continued beyond that end, repeated
    at the ratio of its largest to its smallest rate ([1e-4, 3e-4, 1e-3] goes on 3e-3, 1e-2, ...
    above and 3e-5, 1e-5, ... below). None when the best is inside, or the rate would leave (0, 10].
    """
    tried = sorted(losses)
    best = min(tried, key=lambda lr: losses[lr] if math.isfinite(losses[lr]) else math.inf)
    span = max(grid) / min(grid)
    periods = range(-len(tried), len(tried) + 1)
    continued = {float(f"{lr * span**k:.3g}") for lr in grid for k in periods}  # 3e-05, not 2.9999e-05
    if best == tried[-1]:
        beyond = min((lr for lr in continued if lr > tried[-1] * (1 + 1e-6)), default=None)
    elif best == tried[0]:
        beyond = max((lr for lr in continued if lr < tried[0] * (1 - 1e-6)), default=None)
    else:
        return None
    return beyond if beyond is not None and 0 < beyond <= 10 else None


def _search(config: Config, out_dir: Path) -> tuple[Trained | None, list[dict[str, Any]]]:
    """Train one trial per learning rate, and up to `trainer.lr_search_extend` more beyond an end
    of the grid while the best is there; keep the lowest validation loss in `out_dir`.

    The trials live in `checkpoints/<key>-lr-search/` (outside DVC's outputs, which DVC deletes
    before rerunning a stage) until the search ends: a search killed midway, run again, keeps
    the trials it finished and resumes the one it was in."""
    key = paths.run_key(config.model.size, config.seed, config.data.train_samples, config.variant)
    scratch = resume.search_dir(key)  # removed by train_seed once the search is reported
    trials: list[tuple[float, Path, Trained | None]] = []

    def trial(lr: float) -> None:
        trial_config = with_lr(config, lr)
        folder = scratch / f"lr{lr:g}-{sweep_retry.identity_digest(trial_config)}"
        name = f"{run_name(config)} lr={lr:g}"
        if trained := _finished_trial(trial_config, folder):
            print(f"{name}: finished before this search was stopped; run {trained.run_id} kept")
        else:
            trained = _train(trial_config, folder, name, tags={"lr_search.lr": f"{lr:g}"})
            if trained is not None:  # rank zero: what this search, if stopped later, keeps
                atomic.write_json(folder / TRIAL_FILE, dataclasses.asdict(trained))
        trials.append((lr, folder, trained))

    grid = config.trainer.lr_search
    for lr in grid:
        trial(lr)
    for _ in range(config.trainer.lr_search_extend):  # one device only (config.check): rank zero
        lr = rate_beyond(grid, {lr: t.metrics["val/loss"] for lr, _, t in trials if t is not None})
        if lr is None:
            break
        print(f"{run_name(config)}: the best rate is an end of those tried, so lr={lr:g} too")
        trial(lr)
    if rank_zero_only.rank != 0:
        return None, []
    done = [(lr, folder, t) for lr, folder, t in trials if t is not None]
    best_lr, best_dir, best = min(done, key=lambda trial: trial[2].metrics["val/loss"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(out_dir / CHECKPOINT_FILE) as tmp:
        shutil.copyfile(best_dir / CHECKPOINT_FILE, tmp)
    chosen = {t.run_id: {"lr_search.chosen": str(t is best).lower()} for _, _, t in done}
    runs.tag_runs(config.tracking, chosen)
    report = [
        {
            "lr": lr,
            "run_id": t.run_id,
            "val/loss": t.metrics["val/loss"],
            "converged": bool(t.metrics.get("train/converged", 1.0)),
            "chosen": t is best,
        }
        for lr, _, t in done
    ]
    metrics = {**best.metrics, "lr_search/lr": best_lr}
    return Trained(best.run_id, metrics, best.first_step_at, best.history), report
