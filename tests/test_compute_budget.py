"""The compute-budget axis: a budget buys each size the training set its FLOPs allow, the same way
in every stage; budgets the data cannot serve are refused in one line."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from scalelab import compute_budget
from scalelab.config import Config, load_config
from scalelab.errors import ConfigError
from scalelab.models import build
from scalelab.models.flops import training_flops_per_sample
from tests.conftest import ROOT


def study(*overrides: str) -> Config:
    """The digits smoke study's config, with `overrides`."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return load_config(compose("config", overrides=["experiment=digits_mlp", *overrides]))


def at(config: Config, size: str) -> Config:
    return dataclasses.replace(config, model=dataclasses.replace(config.model, size=size))


@pytest.fixture
def in_digits(digits: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in the folder whose data/prepared/digits is prepared, as a stage does."""
    monkeypatch.chdir(digits.parents[2])
    return digits


def test_a_budget_buys_each_size_what_its_flops_per_sample_allow(in_digits: Path) -> None:
    config = study("data.compute_budget=2e7", "trainer.max_epochs=3", "trainer.batch_size=32")
    bought = {}
    for size in ("xxs", "xs", "s"):
        net = build(at(config, size).model, [1, 8, 8], 10)
        per_sample = training_flops_per_sample(net, [1, 8, 8])
        bought[size] = compute_budget.resolve(at(config, size)).data.train_samples
        assert bought[size] == math.floor(2e7 / (3 * per_sample)), size
    assert bought["xxs"] > bought["xs"] > bought["s"], "a bigger model buys fewer samples"
    resolved = compute_budget.resolve(at(config, "s"))
    assert resolved.data.compute_budget == 2e7, "the budget stays on the run: its report records it"
    assert compute_budget.resolve(resolved) is resolved, "resolving twice changes nothing"
    plain = study()
    assert compute_budget.resolve(plain) is plain, "without a budget, the run's own training set"


def test_resolving_leaves_the_random_state_alone(in_digits: Path) -> None:
    config = study(
        "data.compute_budget=2e7", "trainer.max_epochs=3", "trainer.batch_size=32", "model.size=xs"
    )
    torch.manual_seed(0)
    compute_budget._COUNTED.clear()  # count again: building the network draws weights
    compute_budget.resolve(config)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3)), "a training seeded before resolving is unchanged"


TOO_SMALL = r"data.compute_budget=100000 buys \d+ training samples for model.size=s .* less than one batch"
TOO_LARGE = r"data.compute_budget=1e\+12 buys \d+ .* more than the 1293 of the training split of digits"


@pytest.mark.parametrize(
    ("budget", "says"),
    [("1e5", TOO_SMALL + r" of 128: use a budget >= "), ("1e12", TOO_LARGE + ": use a budget <= ")],
)
def test_a_budget_the_data_cannot_serve_is_refused_with_the_range_that_works(
    in_digits: Path, budget: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        compute_budget.resolve(study(f"data.compute_budget={budget}", "model.size=s"))


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["data.compute_budget=-1"], "data.compute_budget=-1.0 is invalid: use > 0"),
        (["data.compute_budget=1e9", "data.train_samples=100"], "a budget sets data.train_samples itself"),
        (["sweep.compute_budgets=[1e9,1e9]"], "sweep.compute_budgets=.* list distinct budgets > 0"),
        (["sweep.compute_budgets=[1e9]", "sweep.data_sizes=[100]"], "a study has one data axis"),
    ],
)
def test_budgets_that_make_no_sense_are_refused(overrides: list[str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        study(*overrides)


def test_a_rung_stage_runs_every_budget_and_seed(in_digits: Path) -> None:
    quick = ["trainer.max_epochs=3", "trainer.batch_size=32"]
    config = study("sweep.compute_budgets=[1e7,2e7]", "sweep.seeds=[0,1]", "all_seeds=true", *quick)
    cells = [(r.data.compute_budget, r.seed, r.data.train_samples) for r in config.runs()]
    assert cells == [(1e7, 0, None), (1e7, 1, None), (2e7, 0, None), (2e7, 1, None)]
    samples = compute_budget.samples_by_size(config, ["xxs", "xs"], [1e7, 2e7])
    per_seed = [compute_budget.resolve(at(r, "xxs")).data.train_samples for r in config.runs()]
    assert samples["xxs"] == per_seed[::2] == per_seed[1::2], "the study reads back where each cell trained"


def test_budgets_that_buy_a_size_the_same_set_are_refused(in_digits: Path) -> None:
    config = study("sweep.compute_budgets=[2e7,2.00001e7]", "trainer.max_epochs=3", "trainer.batch_size=32")
    twice = r"buy model.size=xxs the same training set twice .* space the budgets"
    with pytest.raises(ConfigError, match=twice):
        compute_budget.samples_by_size(config, ["xxs", "s"], config.sweep.compute_budgets)


def test_a_text_budget_beyond_the_corpus_buys_passes_over_it(tiny_text: Path, monkeypatch) -> None:
    monkeypatch.chdir(tiny_text.parents[2])
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        text = ["model=gpt", "data=text", "data.context=16", "model.size=xxs", "trainer.max_epochs=1"]
        config = load_config(compose("config", overrides=text))
    manifest = json.loads((tiny_text / "manifest.json").read_text())
    per_window = compute_budget.flops_per_sample(config.model, (16,), manifest["num_classes"])
    windows = int(manifest["splits"]["train"]["count"])
    budget = 3.5 * windows * per_window
    with_budget = dataclasses.replace(config.data, compute_budget=budget)
    bought = compute_budget.resolve(dataclasses.replace(config, data=with_budget))
    assert bought.data.train_samples == math.floor(budget / per_window) > 3 * windows, "3.5 passes"
