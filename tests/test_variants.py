"""A run's variant: the settings beyond size, seed and data size that a multirun sweeps."""

from __future__ import annotations

import pytest

from scalelab import paths, variants
from scalelab.config import Config, ConfigError, check


def test_a_variant_names_its_settings_sorted_by_key() -> None:
    assert variants.name({"trainer.optimizer.lr": "0.003", "data": "digits"}) == (
        "data=digits,trainer.optimizer.lr=0.003"
    )
    assert variants.name({}) == ""


@pytest.mark.parametrize(
    "settings",
    [
        {"model.kwargs.activation": "relu" * 20},  # too long for a folder name to read
        {"trainer.optimizer.betas": "[0.9, 0.95]"},  # brackets and a space
        {"data.root": "/data/mine"},  # a slash would make two folders
    ],
)
def test_a_long_or_unsafe_variant_is_a_short_stable_hash(settings: dict[str, str]) -> None:
    named = variants.name(settings)
    assert named.startswith("h") and len(named) == 11
    assert variants.name(dict(settings)) == named, "the same settings name the same folder"
    assert variants.name({**settings, "seed_of_something": "1"}) != named


def test_a_job_s_variant_comes_from_its_overrides_of_the_swept_keys_only() -> None:
    overrides = ["model.size=s", "seed=1", "trainer.optimizer.lr=0.01", "trainer.max_epochs=3", "data=digits"]
    assert variants.of_overrides(overrides, ["trainer.optimizer.lr", "data"]) == (
        "data=digits,trainer.optimizer.lr=0.01"
    )
    assert variants.of_overrides(overrides, []) == ""


def test_the_variant_is_the_folder_in_front_of_a_run_s_cell() -> None:
    assert paths.cell("m", None, "trainer.optimizer.lr=0.01") == "trainer.optimizer.lr=0.01/m"
    assert str(paths.model_dir("m", 0, 1000, "data=digits")) == "models/data=digits/m/d1000/s0"
    assert paths.run_key("m", 2, None, "data=digits") == "data=digits-m-s2"
    assert str(paths.model_dir("m", 0)) == "models/m/s0", "without a variant, the study's own paths"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variant": "a/b"}, "variant='a/b' is invalid: a variant is one folder name"),
        ({"variant": ".."}, "variant='..' is invalid: a variant is one folder name"),
        ({"variant": "x", "all_seeds": True}, "variant='x' is invalid: dvc.yaml's stages write"),
    ],
)
def test_a_variant_that_cannot_be_a_folder_or_lives_in_a_dvc_stage_is_refused(
    changes: dict[str, object], message: str
) -> None:
    config = Config(**changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check(config)


def test_variants_over_data_settings_do_not_compare() -> None:
    assert variants.differs_in_data(["data"])
    assert variants.differs_in_data(["data.val_fraction", "trainer.optimizer.lr"])
    assert not variants.differs_in_data(["trainer.optimizer.lr", "model.kwargs.activation"])
