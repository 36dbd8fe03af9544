"""The config schema: types come from these dataclasses, ranges and combinations from `check`.

Hydra composes `conf/` against this schema (registered as `scalelab_schema`, also for DVC's
composition via `hydra_plugins/`), so a mistyped value fails before any work. `load_config`
additionally checks ranges and cross-field rules, raising one-line `ConfigError`s.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
)

from scalelab.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

# The built-in datasets (conf/data/), whose rules `check` knows; any other is a user's own.
DATASETS = ("digits", "mnist1d", "fashion_mnist", "mnist", "spoken_digits", "shakespeare", "text")
HELD_OUT = ("digits", "shakespeare", "text")  # no official test split: prepare holds one out
TEXT_DATASETS = ("shakespeare", "text")  # token windows, for a language model
CNN_FAMILY = "scalelab.models.cnn.cnn"
MLP_FAMILY = "scalelab.models.mlp.mlp"
GPT_FAMILY = "scalelab.models.gpt.gpt"
INITS = ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "torch_default")
LOSSES = ("cross_entropy", "mse")
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine")
LR_SCALINGS = ("constant", "mup")
PRECISIONS = ("32-true", "bf16-mixed")


@dataclass
class AudioConfig:
    """How `prepare` turns a recording into a fixed-size log-mel spectrogram (spoken_digits)."""

    sample_rate: int = 8000  # FSDD's rate; other rates are refused, not resampled
    n_fft: int = 256  # 32 ms windows
    hop_length: int = 128  # 16 ms hops
    n_mels: int = 32
    frames: int = 64  # ~1 s: longer clips are cropped, shorter ones padded with silence


@dataclass
class DataConfig:
    """Which dataset, where its files are, and how `prepare` splits and normalises it.

    `_target_` is the loader: a function of this config returning a `RawDataset`
    (`scalelab.data.sources`); the built-in datasets name theirs in `conf/data/`, a user's own
    dataset names its own (docs/bring-your-own.md).
    """

    _target_: str = "scalelab.data.sources.digits"
    name: str = "digits"  # the prepared folder (data/prepared/<name>/) and the study's name
    root: str | None = None  # a folder holding the IDX files; tried first
    system_dir: str | None = None  # a system-wide copy (Debian's dataset packages); tried second
    mirrors: list[str] = field(default_factory=list)  # base URLs; tried last, SHA-256 verified
    download_dir: str = "data/raw"  # where downloads land: data/raw/<name>/
    val_fraction: float = 0.1
    test_fraction: float | None = None  # only for datasets without an official test split
    standardize: bool = False  # subtract the train mean and divide by the train std
    split_seed: int = 0  # the validation (and digits' test) split; separate from the train seed
    samples: int | None = None  # generated datasets (mnist1d): how many to make, train + test
    # The data axis: train on the first n samples of the training split in a seed's fixed
    # shuffled order, so that for one seed a smaller set is a prefix of a larger one; the
    # validation and test splits stay whole. null: the whole training split.
    train_samples: int | None = None
    # The compute-budget axis, instead of train_samples: train on as many samples as this many
    # training FLOPs buy at the run's size over trainer.max_epochs (scalelab/compute_budget.py).
    compute_budget: float | None = None
    audio: AudioConfig = field(default_factory=AudioConfig)  # spoken_digits only
    context: int = 128  # text datasets only: characters a language model sees at once


@dataclass
class ModelConfig:
    """A model family, the rung of its size ladder, and optional overrides of that rung.

    `_target_` is the family: a factory called as `factory(input_shape=..., num_classes=...,
    **kwargs, **ladder[size])` that returns an `nn.Module` (`scalelab.models.build`). A rung
    holds whatever keyword arguments its family takes; the built-in families take `width` and
    `depth`, which `model.width` / `model.depth` override when set.
    """

    _target_: str = "scalelab.models.mlp.mlp"
    name: str = "mlp"  # names the study and its runs (mlp-m-s0)
    size: str = "l"
    ladder: dict[str, dict[str, Any]] = field(default_factory=dict)
    width: int | None = None  # overrides ladder[size].width when set
    depth: int | None = None  # overrides ladder[size].depth when set
    kwargs: dict[str, Any] = field(default_factory=dict)  # the family's arguments for every rung
    init: str = "xavier_uniform"  # Keras' glorot_uniform with zero biases, as in the seed


@dataclass
class EarlyStoppingConfig:
    """Lightning's EarlyStopping on `val/loss`: `trainer.max_epochs` becomes a budget.

    Whether or not it stops training, the weights kept (evaluated, logged, registered) are those
    of the epoch with the lowest `val/loss`, and a run counts as converged when no epoch in its
    last `patience` beat that best: each rung is measured at its own best, not at a fixed epoch.
    """

    enabled: bool = True
    patience: int = 5  # epochs without a new best val/loss before stopping
    min_delta: float = 0.0  # how much lower val/loss must be to count as a new best


# "auto": one process. "ddp": Lightning starts one process per device, each running the same
# entry point (as srun does on a cluster). Spawn-based strategies are left out: they train in
# child processes whose callbacks' state (epoch history, timing) never comes back.
STRATEGIES = ("auto", "ddp")


@dataclass
class TrainerConfig:
    """How to fit: optimiser, loss, batch, epochs, and Lightning's runtime switches."""

    max_epochs: int = 10
    batch_size: int = 128
    loss: str = "cross_entropy"
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.Adam", "lr": 1e-3, "fused": True}
    )
    # "constant": the seed's (Keras' Adam). "cosine": decays once an epoch from optimizer.lr
    # towards 0 at max_epochs, so each size is measured at the end of its training rather than
    # at a random point of its noise (Hoffmann et al. 2022, App. B: one cycle per training).
    # "warmup_cosine": per optimiser step, linear warm-up from 0 over warmup_steps, then a cosine
    # down to 10% of optimizer.lr at the last step (Hoffmann et al. 2022, §3 and App. B).
    lr_schedule: str = "constant"
    warmup_steps: int = 0  # lr_schedule=warmup_cosine's linear warm-up
    # A language model's budget instead of max_epochs: this many training tokens, i.e.
    # ceil(max_tokens / (batch_size x data.context)) optimiser steps (training/budget.py).
    max_tokens: int | None = None
    # "constant": optimizer.lr for every parameter of every rung. "mup": μP's rule for Adam
    # (training/width_scaling.py): hidden and readout weights at lr * base_width / width.
    lr_scaling: str = "constant"
    base_width: int = 256  # the width at which optimizer.lr holds (the seed's 256, with Adam 1e-3)
    # Learning rates to try for every rung and seed, each a trial run; the lowest val/loss is
    # kept (training/recorded.py). Empty: optimizer.lr alone.
    lr_search: list[float] = field(default_factory=list)
    # When a run's best rate is the smallest or largest tried, try up to this many more beyond
    # it, continuing the grid's pattern past that end (training/recorded.py `rate_beyond`).
    lr_search_extend: int = 0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    accelerator: str = "cpu"
    devices: int = 1  # processes (CPU) or GPUs; with strategy=ddp, batch_size is split among them
    strategy: str = "auto"  # "ddp": one process per device, gradients averaged (trainer=ddp)
    deterministic: bool = True
    num_threads: int | None = None  # torch's intra-op threads; null = torch's default
    steps_per_call: int = 32  # optimiser steps per Lightning training_step: speed only, same updates
    progress_bar: bool = True
    precision: str = "32-true"  # or "bf16-mixed": bfloat16 autocast on CPU and GPU
    gradient_clip_val: float | None = None  # clip the gradient's norm to this before each step
    # The module steps its optimiser itself, a group of batches per call (steps_per_call), so
    # Lightning cannot accumulate: only 1 is accepted (`check` says so).
    accumulate_grad_batches: int = 1


@dataclass
class TrackingConfig:
    """Where MLflow records runs."""

    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db (repo root)
    experiment: str | None = None  # null: "<data>-<model>", one experiment per study
    log_model: bool = True


@dataclass
class SweepConfig:
    """A study: which rungs and seeds `dvc repro` (or a multirun) trains, and how the law is fit."""

    name: str = "ladder"  # names the MLflow parent run and the multirun report folder
    sizes: list[str] = field(default_factory=lambda: ["xs", "s", "m", "l", "xl", "xxl"])
    seeds: list[int] = field(default_factory=lambda: [0])
    bootstrap: int = 1000  # resamples (whole seeds per rung) for the 95% intervals; 0: none
    # The data axis of `dvc repro`: every rung trains on each of these training-set sizes
    # (data.train_samples), and the study fits the joint law L(N, D). Empty: the axis is off.
    data_sizes: list[int] = field(default_factory=list)
    # The compute-budget axis of `dvc repro`: every rung trains at each of these budgets (in
    # training FLOPs, data.compute_budget), and the study fits IsoFLOP profiles and L(N, D).
    compute_budgets: list[float] = field(default_factory=list)


@dataclass
class Config:
    """The whole composed config: what `params.yaml` holds."""

    def runs(self) -> list[Config]:
        """The runs this process trains or evaluates: this config's, or with `all_seeds` every
        (training-set size of sweep.data_sizes or budget of sweep.compute_budgets, seed of
        sweep.seeds) of its rung (`scalelab.compute_budget.resolve` turns a budget into its
        training-set size once the data is prepared)."""
        if not self.all_seeds:
            return [self]
        cells: list[dict[str, Any]] = (
            [{"compute_budget": c, "train_samples": None} for c in self.sweep.compute_budgets]
            or [{"train_samples": n, "compute_budget": None} for n in self.sweep.data_sizes]
            or [{}]
        )
        return [
            dataclasses.replace(self, seed=seed, all_seeds=False, data=dataclasses.replace(self.data, **cell))
            for cell in cells
            for seed in self.sweep.seeds
        ]

    seed: int = 0
    # True: this process trains (or evaluates) every seed of sweep.seeds (on every size of
    # sweep.data_sizes) in turn, as each DVC rung stage does, so a rung pays the imports of
    # torch, Lightning and MLflow once.
    all_seeds: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    # Lightning callbacks and loggers added by name, each a `_target_` (conf/callbacks/,
    # conf/logger/; training/addons.py). MLflow stays the record either way.
    callbacks: dict[str, Any] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)
    # The settings beyond size, seed and data size that set this run apart in a multirun
    # (`trainer.lr=3e-3`): the folder in front of its paths. A multirun fills it in
    # (scalelab/variants.py); "" everywhere else.
    variant: str = ""


def register_schema() -> None:
    """Register the schema so `conf/config.yaml` can name it in its defaults list."""
    ConfigStore.instance().store(name="scalelab_schema", node=Config)


def load_config(cfg: DictConfig | dict[str, Any]) -> Config:
    """Validate a composed config (from Hydra or `params.yaml`) and return it typed."""
    if isinstance(cfg, DictConfig):
        # Hydra's node keeps the schema's type but also any key added with `+key=value`, and a
        # merge into the schema then keeps that key silently: merge plain values instead.
        cfg = OmegaConf.to_container(cfg)  # type: ignore[assignment]
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
        config: Config = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        raise ConfigError(schema_error_line(err)) from None
    check(config)
    return config


def schema_error_line(err: OmegaConfBaseException) -> str:
    """One line for an OmegaConf error against the schema: the key, the value, what is allowed."""
    key = err.full_key or "?"
    if isinstance(err, (ConfigKeyError, ConfigAttributeError)):
        return unknown_key(key)
    return f"{key}={err.value!r} is invalid: {str(err).splitlines()[0]}"


def unknown_key(full_key: str) -> str:
    """One line for a key the schema does not have: the nearest setting, or all of its section."""
    *section, name = full_key.split(".")
    node: Any = Config
    for part in section:
        node = typing.get_type_hints(node).get(part)
        if not dataclasses.is_dataclass(node):
            return f"{full_key} is not a setting scalelab knows"
    settings = [f.name for f in dataclasses.fields(node)]
    prefix = ".".join(section) + "." if section else ""
    nearest = difflib.get_close_matches(name, settings, n=1)
    fix = f"did you mean {prefix}{nearest[0]}?" if nearest else "use one of " + ", ".join(settings)
    return f"{full_key} is not a setting: {fix}"


def input_shape(data: DataConfig) -> list[int]:
    """The (C, H, W) shape `prepare` gives each sample of `data.name`, known before any work."""
    if data.name == "spoken_digits":
        return [1, data.audio.n_mels, data.audio.frames]  # a log-mel spectrogram as an image
    if data.name == "mnist1d":
        return [1, 1, 40]  # a 40-point signal
    return [1, 8, 8] if data.name == "digits" else [1, 28, 28]


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}")


def check(cfg: Config) -> None:
    """Check ranges and combinations the types cannot express; raise one `ConfigError`."""
    d, m, t = cfg.data, cfg.model, cfg.trainer
    _require(
        "/" not in cfg.variant and not cfg.variant.startswith("."),
        "variant",
        cfg.variant,
        "a variant is one folder name: no '/', no leading '.'",
    )
    _require(
        not (cfg.variant and cfg.all_seeds),
        "variant",
        cfg.variant,
        "dvc.yaml's stages write the study's own paths; keep DVC experiments apart with dvc exp run",
    )
    _require(_dotted(d._target_), "data._target_", d._target_, "give a loader's dotted path")
    _require(0 < d.val_fraction < 1, "data.val_fraction", d.val_fraction, "use 0 < x < 1")
    if d.name in HELD_OUT:
        _require(
            d.test_fraction is not None and 0 < d.test_fraction < 1,
            "data.test_fraction",
            d.test_fraction,
            f"{d.name} has no official test split; use 0 < x < 1 (conf/data/{d.name}.yaml sets one)",
        )
    elif d.name in DATASETS:
        _require(
            d.test_fraction is None,
            "data.test_fraction",
            d.test_fraction,
            f"{d.name} has an official test split; set data.test_fraction=null",
        )
    _require(
        d.test_fraction is None or 0 < d.test_fraction + d.val_fraction < 1,
        "data.val_fraction",
        d.val_fraction,
        "val_fraction + test_fraction must be < 1",
    )
    _require(d.context >= 1, "data.context", d.context, "use >= 1 (characters a language model sees at once)")
    subset = d.train_samples
    _require(subset is None or subset >= 1, "data.train_samples", subset, "use >= 1 or null")
    budget = d.compute_budget
    _require(budget is None or budget > 0, "data.compute_budget", budget, "use > 0 (FLOPs) or null")
    _require(
        budget is None or subset is None,
        "data.compute_budget",
        budget,
        "a budget sets data.train_samples itself; set data.train_samples=null",
    )
    if d.name == "mnist1d":
        _require(d.samples is None or d.samples >= 100, "data.samples", d.samples, "use >= 100 or null")
    elif d.name in DATASETS:
        _require(d.samples is None, "data.samples", d.samples, f"{d.name} is not generated; set null")
    _require(_dotted(m._target_), "model._target_", m._target_, "give a factory's dotted path")
    _require(
        not (m._target_ == CNN_FAMILY and d.name == "mnist1d"),
        "model.name",
        m.name,
        "model=cnn takes 2-D inputs and data=mnist1d gives 1-D signals; use model=mlp",
    )
    _check_text(cfg)
    _require(bool(m.ladder), "model.ladder", m.ladder, "the model needs a size ladder")
    _require(m.size in m.ladder, "model.size", m.size, f"use one of {', '.join(m.ladder)}")
    for size, rung in m.ladder.items():
        for key in ("width", "depth"):  # the built-in families' knobs; a user's family checks its own
            value = rung.get(key, 1)
            ok = isinstance(value, int) and value >= 1
            _require(ok, f"model.ladder.{size}.{key}", value, "use an integer >= 1")
    _require(m.width is None or m.width >= 1, "model.width", m.width, "use >= 1 or null")
    _require(m.depth is None or m.depth >= 1, "model.depth", m.depth, "use >= 1 or null")
    if m._target_ == CNN_FAMILY and d.name in DATASETS:
        _check_cnn_fits(cfg)
    _require(m.init in INITS, "model.init", m.init, f"use one of {', '.join(INITS)}")
    _require(t.max_epochs >= 1, "trainer.max_epochs", t.max_epochs, "use >= 1")
    _require(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "use >= 1")
    _require(t.warmup_steps >= 0, "trainer.warmup_steps", t.warmup_steps, "use >= 0")
    _require(
        t.max_tokens is None or t.max_tokens >= 1, "trainer.max_tokens", t.max_tokens, "use >= 1 or null"
    )
    _require(
        t.max_tokens is None or d.name not in DATASETS or d.name in TEXT_DATASETS,
        "trainer.max_tokens",
        t.max_tokens,
        f"a token budget is for a language model on text and data={d.name} is not; use trainer.max_epochs",
    )
    es = t.early_stopping
    _require(es.patience >= 1, "trainer.early_stopping.patience", es.patience, "use >= 1")
    _require(es.min_delta >= 0, "trainer.early_stopping.min_delta", es.min_delta, "use >= 0")
    _require(t.loss in LOSSES, "trainer.loss", t.loss, f"use one of {', '.join(LOSSES)}")
    _require(
        t.lr_schedule in LR_SCHEDULES,
        "trainer.lr_schedule",
        t.lr_schedule,
        f"use one of {', '.join(LR_SCHEDULES)}",
    )
    _require(
        "_target_" in t.optimizer,
        "trainer.optimizer",
        t.optimizer,
        "give a _target_, e.g. torch.optim.Adam",
    )
    _require(
        t.lr_scaling in LR_SCALINGS,
        "trainer.lr_scaling",
        t.lr_scaling,
        f"use one of {', '.join(LR_SCALINGS)}",
    )
    _require(t.base_width >= 1, "trainer.base_width", t.base_width, "use >= 1")
    lr = t.optimizer.get("lr")
    _require(
        t.lr_scaling == "constant" or lr is not None,
        "trainer.lr_scaling",
        t.lr_scaling,
        "mup scales trainer.optimizer.lr, so set one (e.g. trainer.optimizer.lr=1e-3)",
    )
    _require(
        lr is None or (isinstance(lr, int | float) and 0 < lr <= 10),
        "trainer.optimizer.lr",
        lr,
        "use 0 < lr <= 10",
    )
    _require(
        all(isinstance(r, int | float) and 0 < r <= 10 for r in t.lr_search)
        and len(set(t.lr_search)) == len(t.lr_search) != 1,
        "trainer.lr_search",
        t.lr_search,
        "list two or more distinct rates in (0, 10], e.g. [3e-4,1e-3,3e-3], or [] for none",
    )
    _require(
        isinstance(t.lr_search_extend, int) and t.lr_search_extend >= 0,
        "trainer.lr_search_extend",
        t.lr_search_extend,
        "use an integer >= 0",
    )
    _require(
        not t.lr_search_extend or t.lr_search,
        "trainer.lr_search_extend",
        t.lr_search_extend,
        "it extends trainer.lr_search: list two or more rates there",
    )
    _require(
        not t.lr_search_extend or t.devices == 1,
        "trainer.lr_search_extend",
        t.lr_search_extend,
        "use 0 with trainer.devices > 1 (only rank zero knows a trial's loss), or one device",
    )
    sw = cfg.sweep
    unknown = [size for size in sw.sizes if size not in m.ladder]
    _require(not unknown, "sweep.sizes", sw.sizes, f"every size must be one of {', '.join(m.ladder)}")
    _require(len(set(sw.sizes)) == len(sw.sizes) > 0, "sweep.sizes", sw.sizes, "list distinct sizes")
    _require(len(set(sw.seeds)) == len(sw.seeds) > 0, "sweep.seeds", sw.seeds, "list distinct seeds")
    _require(sw.bootstrap >= 0, "sweep.bootstrap", sw.bootstrap, "use >= 0")
    _require(
        len(set(sw.data_sizes)) == len(sw.data_sizes) and all(n >= 1 for n in sw.data_sizes),
        "sweep.data_sizes",
        sw.data_sizes,
        "list distinct training-set sizes >= 1, or [] for none",
    )
    _require(
        len(set(sw.compute_budgets)) == len(sw.compute_budgets) and all(c > 0 for c in sw.compute_budgets),
        "sweep.compute_budgets",
        sw.compute_budgets,
        "list distinct budgets > 0 (training FLOPs), or [] for none",
    )
    _require(
        not (sw.compute_budgets and sw.data_sizes),
        "sweep.compute_budgets",
        sw.compute_budgets,
        "a study has one data axis: set sweep.data_sizes=[] (each budget sets its own sizes)",
    )
    _require(t.devices >= 1, "trainer.devices", t.devices, "use >= 1")
    _require(t.strategy in STRATEGIES, "trainer.strategy", t.strategy, f"use one of {', '.join(STRATEGIES)}")
    _require(
        t.batch_size >= t.devices,
        "trainer.batch_size",
        t.batch_size,
        f"each of the {t.devices} processes needs a share of the batch; use >= trainer.devices",
    )
    _require(t.steps_per_call >= 1, "trainer.steps_per_call", t.steps_per_call, "use >= 1")
    _require(
        t.precision in PRECISIONS, "trainer.precision", t.precision, f"use one of {', '.join(PRECISIONS)}"
    )
    clip = t.gradient_clip_val
    _require(clip is None or clip > 0, "trainer.gradient_clip_val", clip, "use > 0 or null")
    _require(
        t.accumulate_grad_batches == 1,
        "trainer.accumulate_grad_batches",
        t.accumulate_grad_batches,
        "scalelab steps the optimiser itself (trainer.steps_per_call), so Lightning cannot "
        "accumulate; raise trainer.batch_size for larger updates",
    )
    for group in ("callbacks", "logger"):
        for name, spec in getattr(cfg, group).items():
            ok = isinstance(spec, dict) and _dotted(str(spec.get("_target_", "")))
            _require(ok, f"{group}.{name}", spec, f"give a mapping with a _target_ (see conf/{group}/)")
    _require(
        t.num_threads is None or t.num_threads >= 1,
        "trainer.num_threads",
        t.num_threads,
        "use >= 1 or null",
    )


def resolve_target(path: str, key: str, fix: str) -> Any:
    """The function or class a `_target_` names; a `ConfigError` for `key` saying why it cannot
    be imported, and `fix`."""
    from hydra.utils import get_method

    try:
        return get_method(path)
    except Exception as err:  # Hydra wraps import errors in its own; the cause is what helps
        cause = err.__cause__ or err
        raise ConfigError(
            f"{key}={path!r} cannot be imported ({type(cause).__name__}: {cause}); {fix}"
        ) from None


def _dotted(path: str) -> bool:
    """Whether `path` looks like `package.module.name` (whether it imports is found on use)."""
    return len(path.split(".")) >= 2 and all(part.isidentifier() for part in path.split("."))


def _check_text(cfg: Config) -> None:
    """Language models on text, the other built-in families on everything else."""
    d, m, t = cfg.data, cfg.model, cfg.trainer
    _require(
        not (d.name in TEXT_DATASETS and m._target_ in (MLP_FAMILY, CNN_FAMILY)),
        "model.name",
        m.name,
        f"model={m.name} reads images or signals and data={d.name} gives token windows; use model=gpt",
    )
    _require(
        not (m._target_ == GPT_FAMILY and d.name in DATASETS and d.name not in TEXT_DATASETS),
        "model.name",
        m.name,
        f"model=gpt reads text and data={d.name} is not; use data=shakespeare or data=text data.root=PATH",
    )
    if m._target_ == GPT_FAMILY:
        _require(
            t.loss == "cross_entropy", "trainer.loss", t.loss, "a language model trains on cross_entropy"
        )


def _check_cnn_fits(cfg: Config) -> None:
    """Every rung the run or sweep uses must leave the input at least 1x1 after its max-pools."""
    m, shape = cfg.model, input_shape(cfg.data)
    for size in dict.fromkeys([m.size, *cfg.sweep.sizes]):
        if size not in m.ladder:
            continue  # reported by the sweep.sizes / model.size checks
        depth = m.depth if m.depth is not None else m.ladder[size]["depth"]
        key = "model.depth" if m.depth is not None else f"model.ladder.{size}.depth"
        _require(
            min(shape[1:]) >= 2**depth,
            key,
            depth,
            f"model=cnn halves each side per block, and data={cfg.data.name} gives "
            f"{shape[1]}x{shape[2]} inputs; use depth <= {min(shape[1:]).bit_length() - 1}",
        )


def as_dict(section: Any) -> dict[str, Any]:
    """A config section as plain, YAML-ready containers (for logging and checkpoints)."""
    return OmegaConf.to_container(OmegaConf.structured(section), resolve=True)  # type: ignore[return-value]


def one_line_composition_errors(main: F) -> F:
    """Report a command line Hydra cannot compose (an unknown option of a config group, a
    mistyped or unknown key, an override it cannot parse) in one line, with exit status 2.

    Hydra prints those as a multi-line report; it only lets the exception through when
    HYDRA_FULL_ERROR is set, so this sets it for the call. Wrap `hydra.main`'s function with it
    (outermost). A user who sets HYDRA_FULL_ERROR themselves gets Hydra's full traceback.
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from hydra.errors import (
            ConfigCompositionException,
            MissingConfigException,
            OverrideParseException,
        )

        if "HYDRA_FULL_ERROR" in os.environ:
            return main(*args, **kwargs)
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            return main(*args, **kwargs)
        except (ConfigCompositionException, MissingConfigException, OverrideParseException) as err:
            print(f"scalelab: error: {composition_error_line(err)}", file=sys.stderr)
            raise SystemExit(2) from None
        finally:
            del os.environ["HYDRA_FULL_ERROR"]

    return wrapper  # type: ignore[return-value]


def composition_error_line(err: Exception) -> str:
    """One line for an exception Hydra raised while composing the config."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException

    first_line = str(err).splitlines()[0]
    if "submitit_slurm" in str(err):  # the launcher the slurm extra brings is not installed
        return (
            "hydra/launcher=slurm needs hydra-submitit-launcher, which is not installed: "
            "pip install -e '.[slurm]'"
        )
    if "hydra/sweeper/optuna" in str(err) or "hydra/sweeper/sampler" in str(err):  # the search extra
        return "hparams_search needs hydra-optuna-sweeper, which is not installed: pip install -e '.[search]'"
    if isinstance(err, MissingConfigException) and err.options and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return f"{group}={option} is invalid: use one of {', '.join(err.options)}"
    if isinstance(err, ConfigCompositionException) and isinstance(err.__cause__, OmegaConfBaseException):
        return schema_error_line(err.__cause__)
    if isinstance(err, OverrideParseException):
        return (
            f"cannot read the override {err.override!r} ({first_line}): see "
            "https://hydra.cc/docs/advanced/override_grammar/basic"
        )
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
