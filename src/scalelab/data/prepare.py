"""Turn a raw dataset into checked, normalised, split tensors under `data/prepared/<name>/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalelab import atomic, paths
from scalelab.config import DataConfig, as_dict
from scalelab.data import sources, speech, split_files
from scalelab.errors import ConfigError, DataError


def validate(raw: sources.RawDataset, name: str) -> None:
    """Check shapes, counts and label range; raise a `DataError` naming the problem."""
    parts = [("train", raw.train_x, raw.train_y)]
    if raw.test_x is not None and raw.test_y is not None:
        parts.append(("test", raw.test_x, raw.test_y))
    spec = sources.IDX_DATASETS.get(name)
    num_classes = len(raw.class_names)
    for i, (split, x, y) in enumerate(parts):
        if x.ndim != 3:
            raise DataError(f"{name} {split} images have shape {x.shape}, expected (N, H, W)")
        if len(x) != len(y):
            raise DataError(f"{name} {split}: {len(x)} images but {len(y)} labels")
        if y.min() < 0 or y.max() >= num_classes:
            raise DataError(f"{name} {split} labels span {y.min()}..{y.max()}, expected 0..{num_classes - 1}")
        if spec is not None:
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
    """Load, validate, split and normalise `cfg.name`; write it atomically; return its folder."""
    if cfg.name == "spoken_digits":
        return _write(cfg, *_speech(cfg))
    raw = sources.load(cfg)
    validate(raw, cfg.name)
    x, y = raw.train_x, raw.train_y
    if raw.test_x is None or raw.test_y is None:  # no official test split: hold one out
        assert cfg.test_fraction is not None  # guaranteed by config.check
        keep, test = split_indices(y, cfg.test_fraction, cfg.split_seed, "data.test_fraction")
        test_x, test_y = x[test], y[test]
        x, y = x[keep], y[keep]
    else:
        test_x, test_y = raw.test_x, raw.test_y
    train, val = split_indices(y, cfg.val_fraction, cfg.split_seed)
    # Stored as uint8 pixels with a channel axis, (N, 1, H, W): a quarter of float32's size on
    # disk and in DVC's cache. `load_split` divides by the max value, as the seed's x / 255.
    splits = {
        split: (images[:, None], labels)
        for split, (images, labels) in {
            "train": (x[train], y[train]),
            "val": (x[val], y[val]),
            "test": (test_x, test_y),
        }.items()
    }
    about = {
        "origin": raw.origin,
        "inputs": raw.inputs,
        "class_names": list(raw.class_names),
        "split": {
            "seed": cfg.split_seed,
            "val_fraction": cfg.val_fraction,
            "test_fraction": cfg.test_fraction,
            "stratified": True,
        },
    }
    return _write(cfg, splits, about, {}, divide_by=raw.max_value)


def _speech(cfg: DataConfig) -> tuple[Splits, dict[str, Any], dict[str, dict[str, list[str]]]]:
    """FSDD as log-mel spectrograms (N, 1, n_mels, frames), split by take; speakers per sample."""
    folder, fingerprint = speech.locate(cfg)
    recordings = speech.recordings(folder)
    x = np.stack([speech.log_mel(r.path, cfg.audio) for r in recordings])[:, None]
    y = np.array([r.digit for r in recordings], dtype=np.int64)
    takes = np.array([r.take for r in recordings])
    speakers = np.array([r.speaker for r in recordings])
    test = np.isin(takes, speech.TEST_TAKES)
    train_takes = np.unique(takes[~test])
    n_val = int(np.ceil(cfg.val_fraction * len(train_takes)))
    if not test.any() or len(train_takes) - n_val < 1:
        raise DataError(
            f"{folder}: takes {sorted(set(takes.tolist()))} cannot give the official test split (takes 0-4) "
            "and train/validation takes; it needs recordings of takes 0-4 and at least two others"
        )
    val_takes = np.random.default_rng(cfg.split_seed).choice(train_takes, n_val, replace=False)
    val = np.isin(takes, val_takes) & ~test
    masks = {"train": ~test & ~val, "val": val, "test": test}
    about = {
        "origin": str(folder),
        "inputs": {"recordings": fingerprint},
        "class_names": [str(d) for d in range(10)],
        "features": {"kind": "log-mel dB (librosa.filters.mel, power_to_db)", **as_dict(cfg.audio)},
        "split": {
            "seed": cfg.split_seed,
            "by": "take",
            "test_takes": list(speech.TEST_TAKES),
            "val_takes": sorted(val_takes.tolist()),
        },
        "speakers": sorted(set(speakers.tolist())),
    }
    splits = {name: (x[mask], y[mask]) for name, mask in masks.items()}
    groups = {name: {"speaker": speakers[mask].tolist()} for name, mask in masks.items()}
    return splits, about, groups


def _write(
    cfg: DataConfig,
    splits: Splits,
    about: dict[str, Any],
    groups: dict[str, dict[str, list[str]]],
    divide_by: float = 1,
) -> Path:
    """Write tensors and manifest atomically, with how to normalise them at load: divide by
    `divide_by`, then (if `cfg.standardize`) standardise with the train split's statistics."""
    tensors = {s: (torch.from_numpy(x), torch.from_numpy(y)) for s, (x, y) in splits.items()}
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
