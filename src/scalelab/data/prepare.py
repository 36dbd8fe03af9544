"""Turn a raw dataset into checked, normalised, split tensors under `data/prepared/<name>/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalelab import atomic, paths
from scalelab.config import DataConfig
from scalelab.data import prepared, sources
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


def prepare(cfg: DataConfig) -> Path:
    """Load, validate, split and normalise `cfg.name`; write it atomically; return its folder."""
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
    arrays = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (test_x, test_y)}

    # Pixels / max value, as the seed's x / 255; optionally standardised with train statistics.
    def scale(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images.astype(np.float32) / raw.max_value).unsqueeze(1)

    tensors = {split: (scale(ix), torch.from_numpy(iy)) for split, (ix, iy) in arrays.items()}
    mean, std = 0.0, 1.0
    if cfg.standardize:
        mean = float(tensors["train"][0].mean())
        std = float(tensors["train"][0].std())
        tensors = {s: ((tx - mean) / std, ty) for s, (tx, ty) in tensors.items()}

    out = paths.prepared_dir(cfg.name)
    with atomic.atomic_dir(out) as tmp:
        splits = {s: prepared.write_split(tmp, s, tx, ty) for s, (tx, ty) in tensors.items()}
        manifest: dict[str, Any] = {
            "dataset": cfg.name,
            "origin": raw.origin,
            "inputs": raw.inputs,
            "splits": splits,
            "input_shape": list(tensors["train"][0].shape[1:]),  # (1, H, W)
            "num_classes": len(raw.class_names),
            "class_names": list(raw.class_names),
            "normalisation": {"scale": 1 / raw.max_value, "mean": mean, "std": std},
            "split": {
                "seed": cfg.split_seed,
                "val_fraction": cfg.val_fraction,
                "test_fraction": cfg.test_fraction,
                "stratified": True,
            },
            "fingerprint": prepared.fingerprint(splits),
        }
        atomic.write_json(tmp / "manifest.json", manifest)
    return out
