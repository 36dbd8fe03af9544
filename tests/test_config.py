"""The config: conf/ composes (every file), params.yaml is its composition, bad values are refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from scalelab.config import Config, composition_error_line, load_config
from scalelab.errors import ConfigError
from scalelab.models import build, count_parameters
from scalelab.params_file import compose as compose_params
from tests.conftest import ROOT, run

CONF = ROOT / "conf"
# a language model and its data come together
TEXT_PARTNERS = {
    ("data", "shakespeare"): ["model=gpt"],
    ("data", "text"): ["model=gpt"],
    ("model", "gpt"): ["data=shakespeare"],
}


def group_options() -> list[tuple[str, str]]:
    """Every (group, option) under conf/, found by walking the folder recursively."""
    return sorted(
        (str(path.parent.relative_to(CONF)), path.stem)
        for path in CONF.rglob("*.yaml")
        if path.parent != CONF
    )


def test_conf_has_the_groups_the_pipeline_needs() -> None:
    groups = {group for group, _ in group_options()}
    assert {"data", "model", "trainer", "tracking"} <= groups


@pytest.mark.parametrize(("group", "option"), group_options())
def test_every_config_file_composes_and_validates(group: str, option: str) -> None:
    # on the digits smoke study, whose 2-D images the image families take; text goes with model=gpt
    base = [] if group == "experiment" else ["experiment=digits_mlp"]
    partner = TEXT_PARTNERS.get((group, option), [])
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[*base, f"{group}={option}", *partner])
    config = load_config(cfg)
    assert isinstance(config, Config)


def test_params_yaml_is_the_composition_of_conf(tmp_path: Path) -> None:
    composed = tmp_path / "params.yaml"
    compose_params(composed, root=ROOT)
    assert yaml.safe_load((ROOT / "params.yaml").read_text()) == yaml.safe_load(composed.read_text()), (
        "params.yaml drifted from conf/: run `make params`"
    )


def test_the_default_study_is_the_mnist1d_ladder_over_three_seeds() -> None:
    config = load_config(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert (config.data.name, config.data.samples, config.model.name) == ("mnist1d", 10_000, "mlp")
    counts = [
        count_parameters(build(replace(config.model, size=size), [1, 1, 40], 10))[0]
        for size in config.sweep.sizes
    ]
    assert len(counts) >= 6 and counts == sorted(counts), "six rungs or more, smallest first"
    assert counts[-1] / counts[0] >= 10**2.5, "spanning 2.5 orders of magnitude in parameters"
    assert config.sweep.seeds == [0, 1, 2] and config.sweep.bootstrap >= 1000
    assert config.trainer.early_stopping.enabled and config.all_seeds is False


def test_the_smoke_study_keeps_the_seed_recipe_with_its_epochs_as_a_budget() -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        config = load_config(compose("config", overrides=["experiment=digits_mlp"]))
    assert config.data.name == "digits"
    assert config.model.ladder[config.model.size]["width"] == 256
    assert config.trainer.batch_size == 128
    # the seed's 10 epochs stay trainer=default's; the smoke study gives each rung a budget of
    # 100 that early stopping ends
    assert yaml.safe_load((ROOT / "conf/trainer/default.yaml").read_text())["max_epochs"] == 10
    assert config.trainer.max_epochs == 100 and config.trainer.early_stopping.enabled
    assert config.trainer.optimizer == {"_target_": "torch.optim.Adam", "lr": 0.001, "fused": True}
    assert config.trainer.loss == "cross_entropy"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"data": {"_target_": "fmnist"}}, "data._target_='fmnist' is invalid: give a loader's dotted path"),
        ({"data": {"val_fraction": 1.5}}, "data.val_fraction=1.5 is invalid"),
        ({"data": {"name": "mnist"}}, "mnist has an official test split; set data.test_fraction=null"),
        ({"model": {"size": "huge"}}, "model.size='huge' is invalid: use one of xxs, xs, s, m, l, xl"),
        (
            {
                "data": {"name": "mnist1d", "test_fraction": None},
                "model": {"_target_": "scalelab.models.cnn.cnn"},
            },
            "use model=mlp",
        ),
        ({"data": {"samples": 5000}}, "data.samples=5000 is invalid: digits is not generated; set null"),
        (
            {"trainer": {"lr_search": [1e-3]}},
            "trainer.lr_search=[0.001] is invalid: list two or more distinct rates",
        ),
        (
            {"trainer": {"lr_search_extend": 2}},
            "trainer.lr_search_extend=2 is invalid: it extends trainer.lr_search: list two or more rates",
        ),
        (
            {"trainer": {"lr_search": [1e-3, 3e-3], "lr_search_extend": 1, "devices": 2}},
            "trainer.lr_search_extend=1 is invalid: use 0 with trainer.devices > 1",
        ),
        (
            {"trainer": {"lr_scaling": "sqrt"}},
            "trainer.lr_scaling='sqrt' is invalid: use one of constant, mup",
        ),
        (
            {"trainer": {"lr_scaling": "mup", "optimizer": {"lr": None}}},
            "mup scales trainer.optimizer.lr, so set one",
        ),
        ({"model": {"width": 0}}, "model.width=0 is invalid"),
        (
            {"model": {"_target_": "scalelab.models.cnn.cnn", "depth": 4}},
            "model.depth=4 is invalid: model=cnn halves each side per block, and data=digits gives 8x8 "
            "inputs; use depth <= 3",
        ),
        (
            {"model": {"_target_": "resnet"}},
            "model._target_='resnet' is invalid: give a factory's dotted path",
        ),
        (
            {"model": {"ladder": {"l": {"width": 0}}}},
            "model.ladder.l.width=0 is invalid: use an integer >= 1",
        ),
        ({"model": {"init": "zeros"}}, "model.init='zeros' is invalid"),
        ({"trainer": {"max_epochs": 0}}, "trainer.max_epochs=0 is invalid: use >= 1"),
        (
            {"trainer": {"accumulate_grad_batches": 4}},
            "Lightning cannot accumulate; raise trainer.batch_size",
        ),
        (
            {"trainer": {"precision": "16-mixed"}},
            "trainer.precision='16-mixed' is invalid: use one of 32-true",
        ),
        ({"trainer": {"gradient_clip_val": 0}}, "trainer.gradient_clip_val=0.0 is invalid: use > 0 or null"),
        ({"logger": {"csv": "logs"}}, "logger.csv='logs' is invalid: give a mapping with a _target_"),
        ({"trainer": {"batch_size": -1}}, "trainer.batch_size=-1 is invalid"),
        ({"trainer": {"optimizer": {"lr": -0.1}}}, "trainer.optimizer.lr=-0.1 is invalid"),
        ({"trainer": {"loss": "hinge"}}, "trainer.loss='hinge' is invalid: use one of cross_entropy, mse"),
        (
            {"trainer": {"lr_schedule": "step"}},
            "trainer.lr_schedule='step' is invalid: use one of constant, cosine",
        ),
        ({"trainer": {"max_epochs": "ten"}}, "trainer.max_epochs"),
        (
            {"trainer": {"strategy": "ddp_spawn"}},
            "trainer.strategy='ddp_spawn' is invalid: use one of auto, ddp",
        ),
        (
            {"trainer": {"batch_size": 2, "devices": 4}},
            "trainer.batch_size=2 is invalid: each of the 4 processes",
        ),
        (
            {"trainer": {"max_epoch": 3}},
            "trainer.max_epoch is not a setting: did you mean trainer.max_epochs?",
        ),
        (
            {"data": {"audio": {"n_mel": 16}}},
            "data.audio.n_mel is not a setting: did you mean data.audio.n_mels?",
        ),
        ({"trainer": {"zzz": 1}}, "trainer.zzz is not a setting: use one of max_epochs, batch_size, loss,"),
        ({"model": {"width": "abc"}}, "model.width='abc' is invalid: Value 'abc' of type 'str' could not be"),
        (
            {"data": {"name": "shakespeare", "_target_": "scalelab.data.text.shakespeare"}},
            "model.name='mlp' is invalid: model=mlp reads images or signals and data=shakespeare gives "
            "token windows; use model=gpt",
        ),
        (
            {"model": {"_target_": "scalelab.models.gpt.gpt", "name": "gpt"}},
            "model=gpt reads text and data=digits is not; use data=shakespeare or data=text data.root=PATH",
        ),
        ({"data": {"context": 0}}, "data.context=0 is invalid: use >= 1"),
    ],
)
def test_bad_values_are_refused_in_one_line_naming_key_and_fix(override: dict, message: str) -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):  # the digits smoke study
        params = OmegaConf.to_container(compose("config", overrides=["experiment=digits_mlp"]))
    for section, values in override.items():
        for key, value in values.items():
            if isinstance(value, dict):
                params[section][key].update(value)
            else:
                params[section][key] = value
    with pytest.raises(ConfigError) as err:
        load_config(params)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_key_added_on_the_command_line_must_be_a_setting() -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["+trainer.max_epoch=3"])  # Hydra lets `+` add any key
    with pytest.raises(ConfigError, match=r"^trainer.max_epoch is not a setting: did you mean"):
        load_config(cfg)


def test_a_stage_refuses_a_bad_value_before_any_work(tmp_path: Path) -> None:
    result = run(["python", "-m", "pipelines.prepare", "data.val_fraction=2"], ROOT, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("scalelab: error: data.val_fraction=2.0 is invalid: use 0 < x < 1")


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("model=transformer", "model=transformer is invalid: use one of cnn, gpt, mlp"),
        (
            "model.width=abc",
            "model.width='abc' is invalid: Value 'abc' of type 'str' could not be converted to Integer",
        ),
    ],
)
def test_a_command_line_hydra_cannot_compose_fails_in_one_line(override: str, line: str) -> None:
    result = run(["python", "-m", "pipelines.train", override], ROOT, check=False)
    assert (result.returncode, result.stderr.strip()) == (2, f"scalelab: error: {line}")
    assert not (ROOT / "outputs").exists()


def test_the_slurm_launcher_without_its_extra_names_the_install() -> None:
    from hydra.errors import MissingConfigException

    missing = MissingConfigException(
        "In 'hydra/launcher/slurm': Could not load 'hydra/launcher/submitit_slurm'.",
        missing_cfg_file="hydra/launcher/submitit_slurm",
        options=["basic", "joblib", "slurm"],
    )
    assert composition_error_line(missing) == (
        "hydra/launcher=slurm needs hydra-submitit-launcher, which is not installed: "
        "pip install -e '.[slurm]'"
    )
