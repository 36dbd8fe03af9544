"""Turn a raw dataset into checked, normalised, split tensors under `data/prepared/<name>/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalelab import atomic, paths
from scalelab.config import DataConfig
from scalelab.data import sources, split_files, text
from scalelab.errors import ConfigError, DataError


def validate(raw: sources.RawDataset, name: str) -> None:
    """Check shapes, counts and label range; raise a `DataError` naming the problem."""
    parts = [("train", raw.train_x, raw.train_y)]
    if raw.test_x is not None and raw.test_y is not None:
        parts.append(("test", raw.test_x, raw.test_y))
    if raw.val_x is not None and raw.val_y is not None:
        parts.append(("val", raw.val_x, raw.val_y))
    spec = sources.IDX_DATASETS.get(name)
    num_classes = len(raw.class_names)
    for i, (split, x, y) in enumerate(parts):
        if x.ndim != 3:
            raise DataError(f"{name} {split} images have shape {x.shape}, expected (N, H, W)")
        if len(x) != len(y):
            raise DataError(f"{name} {split}: {len(x)} images but {len(y)} labels")
        if y.min() < 0 or y.max() >= num_classes:
            raise DataError(f"{name} {split} labels span {y.min()}..{y.max()}, expected 0..{num_classes - 1}")
        if spec is not None and i < len(spec.counts):
            if x.shape[1:] != spec.image_shape:
                raise DataError(f"{name} {split} images are {x.shape[1:]}, expected {spec.image_shape}")
            if len(x) != spec.counts[i]:
                raise DataError(f"{name} {split} has {len(x)} images, expected {spec.counts[i]}")


def split_indices(
    y: np.ndarray, fraction: float, seed: int, key: str = "data.val_fraction"
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified split of `range(len(y))` into (kept, held out ≈ fraction)."""
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(y))
    held = int(np.ceil(fraction * len(y)))
    if min(held, len(y) - held) < classes:
        raise ConfigError(
            f"{key}={fraction} splits {len(y)} samples {len(y) - held}/{held}, "
            f"fewer than the {classes} classes on one side; choose a fraction that leaves "
            f"at least {classes} on each"
        )
    kept, held = train_test_split(np.arange(len(y)), test_size=fraction, random_state=seed, stratify=y)
    return np.sort(kept), np.sort(held)


Splits = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (x float32 (N, C, H, W), y int64)


def prepare(cfg: DataConfig) -> Path:
    """Load (`data._target_`), validate, split and normalise `cfg.name`; write it atomically;
    return its folder."""
    raw = sources.load(cfg)
    if isinstance(raw, text.RawText):  # a corpus: tokens in windows, not samples and labels
        return text.prepare_text(cfg, raw)
    validate(raw, cfg.name)
    if raw.val_x is not None and raw.val_y is not None:  # the dataset's own, fixed split
        if raw.test_x is None or raw.test_y is None:
            raise DataError(f"{cfg.name}: its loader gives a validation split but no test split; give both")
        parts = {
            "train": (raw.train_x, raw.train_y),
            "val": (raw.val_x, raw.val_y),
            "test": (raw.test_x, raw.test_y),
        }
        split = raw.split or {"by": "the dataset"}
    else:
        parts, split = _split(raw, cfg)
    # Stored with a channel axis, (N, 1, H, W); images as uint8 pixels, a quarter of float32's
    # size on disk and in DVC's cache. `load_split` divides by the max value, as the seed's x / 255.
    splits = {name: (x[:, None], y) for name, (x, y) in parts.items()}
    about = {
        "origin": raw.origin,
        "inputs": raw.inputs,
        "class_names": list(raw.class_names),
        "split": split,
        **raw.about,
    }
    return _write(cfg, splits, about, raw.groups, divide_by=raw.max_value)


def _split(raw: sources.RawDataset, cfg: DataConfig) -> tuple[Splits, dict[str, Any]]:
    """Train/validation (stratified, `split_seed`), and a held-out test split when the dataset
    has no official one."""
    x, y = raw.train_x, raw.train_y
    if raw.test_x is None or raw.test_y is None:  # no official test split: hold one out
        if cfg.test_fraction is None:
            raise ConfigError(
                f"data.test_fraction=None is invalid: {cfg.name} has no official test split; "
                "hold one out with data.test_fraction=0.2 (or another 0 < x < 1)"
            )
        keep, test = split_indices(y, cfg.test_fraction, cfg.split_seed, "data.test_fraction")
        test_x, test_y = x[test], y[test]
        x, y = x[keep], y[keep]
    elif cfg.test_fraction is not None:
        raise ConfigError(
            f"data.test_fraction={cfg.test_fraction} is invalid: {cfg.name} has an official test split; "
            "set data.test_fraction=null"
        )
    else:
        test_x, test_y = raw.test_x, raw.test_y
    train, val = split_indices(y, cfg.val_fraction, cfg.split_seed)
    parts = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (test_x, test_y)}
    split = {
        "seed": cfg.split_seed,
        "val_fraction": cfg.val_fraction,
        "test_fraction": cfg.test_fraction,
        "stratified": True,
    }
    return parts, split


def _write(
    cfg: DataConfig,
    splits: Splits,
    about: dict[str, Any],
    groups: dict[str, dict[str, list[str]]],
    divide_by: float = 1,
) -> Path:
    """Write tensors and manifest atomically, with how to normalise them at load: divide by
    `divide_by`, then (if `cfg.standardize`) standardise with the train split's statistics."""
    # IDX files parse into read-only views of their bytes, which torch warns about: copy those
    writable = {s: tuple(np.require(a, requirements="W") for a in xy) for s, xy in splits.items()}
    tensors = {s: (torch.from_numpy(x), torch.from_numpy(y)) for s, (x, y) in writable.items()}
    mean, std = 0.0, 1.0
    if cfg.standardize:
        train = tensors["train"][0].to(torch.float32) / divide_by
        mean, std = float(train.mean()), float(train.std())
    normalisation = {"divide_by": divide_by, "standardized": cfg.standardize, "mean": mean, "std": std}
    out = paths.prepared_dir(cfg.name)
    with atomic.atomic_dir(out) as tmp:
        written = {
            s: split_files.write_split(tmp, s, tx, ty, groups.get(s, {})) for s, (tx, ty) in tensors.items()
        }
        manifest: dict[str, Any] = {
            "dataset": cfg.name,
            **about,
            "splits": written,
            "input_shape": list(tensors["train"][0].shape[1:]),  # (C, H, W)
            "num_classes": len(about["class_names"]),
            "normalisation": normalisation,
            "fingerprint": split_files.fingerprint(written),
        }
        atomic.write_json(tmp / "manifest.json", manifest)
    return out
