"""The compute-budget axis: a run given `data.compute_budget` FLOPs trains on as many samples as
that buys at its size, so that every size of a budget spends the same compute (an IsoFLOP
profile, Hoffmann et al. 2022, §3.2).

A run's training compute is `max_epochs × train_samples × flops_per_sample(N)` (the FLOPs the
lab counts in a real forward and backward pass: `scalelab.models.flops`), so the budget C buys
`train_samples = floor(C / (max_epochs · flops_per_sample))` samples, the first that many of the
seed's fixed order (the data axis' nested subsets); a text corpus smaller than that is repeated,
as a language model's token budget does when data runs out (Muennighoff et al. 2023 measure
what repetition costs: little up to ~4 passes). Early stopping may spend less: each run also
records the FLOPs it really used (`train/flops`). The samples are worked out from the prepared
data's shape, so a budget resolves once the data is prepared, in every stage the same way.
"""

from __future__ import annotations

import dataclasses
import math

from scalelab import paths
from scalelab.config import Config, ModelConfig
from scalelab.errors import ConfigError


def flops_per_sample(model: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> int:
    """Training FLOPs per sample of `model`'s rung, counted once on a freshly built network."""
    import torch

    from scalelab.models import build
    from scalelab.models.flops import training_flops_per_sample

    key = (repr(model), tuple(input_shape), num_classes)
    if key not in _COUNTED:
        with torch.random.fork_rng():  # building draws initial weights: leave the caller's RNG be
            net = build(model, list(input_shape), num_classes)
        _COUNTED[key] = training_flops_per_sample(net, list(input_shape))
    return _COUNTED[key]


_COUNTED: dict[tuple[str, tuple[int, ...], int], int] = {}


def samples_for(config: Config, budget: float) -> int:
    """How many training samples `budget` FLOPs buy for `config`'s rung over its max_epochs; a
    `ConfigError` when that is less than one batch or more than the training split holds."""
    from scalelab.data.split_files import read_manifest

    manifest = read_manifest(paths.prepared_dir(config.data.name))
    per_sample = flops_per_sample(config.model, tuple(manifest["input_shape"]), manifest["num_classes"])
    epochs, batch = config.trainer.max_epochs, config.trainer.batch_size
    samples = math.floor(budget / (epochs * per_sample))
    available = int(manifest["splits"]["train"]["count"])
    size = f"model.size={config.model.size} ({per_sample:,} FLOPs per sample, {epochs} epochs)"
    if samples < batch:
        raise ConfigError(
            f"data.compute_budget={budget:g} buys {samples} training samples for {size}, less than "
            f"one batch of {batch}: use a budget >= {epochs * per_sample * batch:.3g}"
        )
    if samples > available and manifest.get("kind") != "text":  # text repeats its span (datamodule)
        raise ConfigError(
            f"data.compute_budget={budget:g} buys {samples} training samples for {size}, more than "
            f"the {available} of the training split of {config.data.name}: use a budget <= "
            f"{epochs * per_sample * available:.3g}"
        )
    return samples


def resolve(config: Config) -> Config:
    """`config` with `data.train_samples` set to what its `data.compute_budget` buys (unchanged
    without a budget, or once resolved)."""
    data = config.data
    if data.compute_budget is None or data.train_samples is not None:
        return config
    samples = samples_for(config, data.compute_budget)
    return dataclasses.replace(config, data=dataclasses.replace(data, train_samples=samples))


def samples_by_size(config: Config, sizes: list[str], budgets: list[float]) -> dict[str, list[int]]:
    """The training-set size of each (size, budget) cell of a study, per size, budgets in order;
    a `ConfigError` when two budgets buy one size the same set (they would share its place)."""
    cells = {}
    for size in sizes:
        rung = dataclasses.replace(config, model=dataclasses.replace(config.model, size=size))
        cells[size] = [samples_for(rung, budget) for budget in budgets]
        if len(set(cells[size])) < len(budgets):
            raise ConfigError(
                f"sweep.compute_budgets={budgets} buy model.size={size} the same training set "
                f"twice ({cells[size]} samples): space the budgets further apart"
            )
    return cells
