"""prepare: checked, seeded, normalised splits written atomically with a manifest of hashes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scalelab.config import DataConfig
from scalelab.data import sources, split_files
from scalelab.data.prepare import prepare, validate
from scalelab.errors import ConfigError, DataError
from tests.conftest import write_idx


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


DIGITS = DataConfig(name="digits", val_fraction=0.1, test_fraction=0.2)


def test_digits_split_counts_and_manifest() -> None:
    out = prepare(DIGITS)
    assert out == Path("data/prepared/digits")
    manifest = json.loads((out / "manifest.json").read_text())
    counts = {s: manifest["splits"][s]["count"] for s in split_files.SPLITS}
    assert sum(counts.values()) == 1797
    assert counts["test"] == 360  # 20% held out, stratified
    assert counts["val"] == 144  # 10% of the remaining 1,437
    assert manifest["input_shape"] == [1, 8, 8] and manifest["num_classes"] == 10
    for split in split_files.SPLITS:
        entry = manifest["splits"][split]
        assert entry["sha256"] == split_files.file_sha256(out / entry["file"])
    x, y = split_files.load_split(out, "train")
    assert x.dtype == torch.float32 and x.shape == (counts["train"], 1, 8, 8)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # pixels / 16, like the seed's / 255
    assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))


def test_pixels_are_stored_as_bytes_and_load_as_the_seeds_x_over_max_value() -> None:
    out = prepare(DIGITS)
    stored = torch.load(out / "train.pt", weights_only=True)["x"]
    assert stored.dtype == torch.uint8, "a quarter of float32's size on disk and in DVC's cache"
    x, _ = split_files.load_split(out, "train")
    assert torch.equal(x, torch.from_numpy(stored.numpy().astype(np.float32) / 16)), "bit for bit"


def test_data_prepared_by_an_older_scalelab_asks_for_prepare_again() -> None:
    out = prepare(DIGITS)
    manifest = split_files.read_manifest(out)
    manifest["normalisation"] = {"scale": 1 / 16, "mean": 0.0, "std": 1.0}  # the float32 format's
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"train.pt is missing or outdated: run `dvc repro prepare`"):
        split_files.load_split(out, "train")


def test_same_seed_same_bytes_other_seed_other_split() -> None:
    first = json.loads((prepare(DIGITS) / "manifest.json").read_text())
    again = json.loads((prepare(DIGITS) / "manifest.json").read_text())
    assert first["fingerprint"] == again["fingerprint"]
    other = DataConfig(name="digits", val_fraction=0.1, test_fraction=0.2, split_seed=1)
    assert json.loads((prepare(other) / "manifest.json").read_text())["fingerprint"] != first["fingerprint"]


def test_splits_do_not_overlap() -> None:
    out = prepare(DIGITS)
    rows = [split_files.load_split(out, s)[0].flatten(1) for s in split_files.SPLITS]
    seen = {tuple(r.tolist()) for r in rows[0]}
    # Digits has a handful of duplicate images; a leak would put hundreds in two splits.
    assert sum(tuple(r.tolist()) in seen for r in rows[2]) < 5


def test_standardisation_uses_train_statistics() -> None:
    out = prepare(DataConfig(name="digits", test_fraction=0.2, standardize=True))
    x, _ = split_files.load_split(out, "train")
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-3
    manifest = split_files.read_manifest(out)
    assert manifest["normalisation"]["std"] > 0


def test_idx_dataset_keeps_its_official_test_split(tiny_idx, monkeypatch) -> None:
    root, spec = tiny_idx()
    monkeypatch.setitem(sources.IDX_DATASETS, "mnist", spec)
    out = prepare(
        DataConfig(
            _target_="scalelab.data.sources.idx_files", name="mnist", root=str(root), val_fraction=0.25
        )
    )
    manifest = split_files.read_manifest(out)
    assert {s: manifest["splits"][s]["count"] for s in split_files.SPLITS} == {
        "train": 30,
        "val": 10,
        "test": 20,
    }
    assert set(manifest["inputs"]) == set(spec.sha256)


def test_a_failed_prepare_leaves_the_previous_result_untouched(tiny_idx, monkeypatch) -> None:
    root, spec = tiny_idx()
    monkeypatch.setitem(sources.IDX_DATASETS, "mnist", spec)
    cfg = DataConfig(
        _target_="scalelab.data.sources.idx_files", name="mnist", root=str(root), val_fraction=0.25
    )
    out = prepare(cfg)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((20, 6, 6), dtype=np.uint8))
    with pytest.raises(DataError, match="checksum mismatch"):
        prepare(cfg)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["mnist"], "no temp folder left behind"


def raw(x: np.ndarray, y: np.ndarray) -> sources.RawDataset:
    return sources.RawDataset(x, y, None, None, 255, sources.DIGIT_NAMES, "test", {})


def test_validate_refuses_labels_out_of_range() -> None:
    with pytest.raises(DataError, match=r"labels span 0\.\.12, expected 0\.\.9"):
        validate(raw(np.zeros((3, 2, 2), np.uint8), np.array([0, 12, 3])), "digits")


def test_validate_refuses_images_and_labels_of_different_counts() -> None:
    with pytest.raises(DataError, match="3 images but 2 labels"):
        validate(raw(np.zeros((3, 2, 2), np.uint8), np.array([0, 1])), "digits")


def test_validate_refuses_counts_the_dataset_does_not_have(tiny_idx) -> None:
    images = np.zeros((5, 28, 28), np.uint8)
    with pytest.raises(DataError, match="fashion_mnist train has 5 images, expected 60000"):
        validate(raw(images, np.zeros(5, np.int64)), "fashion_mnist")


def test_a_split_too_small_for_every_class_is_a_config_error(tiny_idx, monkeypatch) -> None:
    root, spec = tiny_idx()
    monkeypatch.setitem(sources.IDX_DATASETS, "mnist", spec)
    with pytest.raises(ConfigError, match=r"data.val_fraction=0.1 splits 40 samples 36/4, fewer than the 10"):
        prepare(
            DataConfig(
                _target_="scalelab.data.sources.idx_files", name="mnist", root=str(root), val_fraction=0.1
            )
        )
    assert not Path("data/prepared/mnist").exists()


def test_mnist1d_is_generated_offline_split_and_reproducible() -> None:
    before = np.random.get_state()[1].copy()
    out = prepare(
        DataConfig(_target_="scalelab.data.sources.mnist1d", name="mnist1d", samples=500, val_fraction=0.1)
    )
    assert np.array_equal(np.random.get_state()[1], before), "numpy's global random state left alone"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input_shape"] == [1, 1, 40] and manifest["num_classes"] == 10
    counts = {split: manifest["splits"][split]["count"] for split in split_files.SPLITS}
    assert counts == {"train": 360, "val": 40, "test": 100}, "the generator's 80/20, then validation"
    x, y = split_files.load_split(out, "train")
    assert x.dtype == torch.float32 and x.shape == (360, 1, 1, 40) and set(y.tolist()) == set(range(10))
    first = manifest["fingerprint"]
    again = json.loads(
        (
            prepare(DataConfig(_target_="scalelab.data.sources.mnist1d", name="mnist1d", samples=500))
            / "manifest.json"
        ).read_text()
    )
    assert again["fingerprint"] == first, "the same samples every time"
