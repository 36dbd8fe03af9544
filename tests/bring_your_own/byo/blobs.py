"""A dataset the lab does not ship: Gaussian blobs in 12 dimensions, one per class, generated."""

from __future__ import annotations

import hashlib

import numpy as np

from scalelab.config import DataConfig
from scalelab.data.sources import RawDataset


def blobs(cfg: DataConfig) -> RawDataset:
    """The loader `data._target_` names: `data.samples` points of 4 overlapping classes, no
    official test split (prepare holds out `data.test_fraction`)."""
    rng = np.random.default_rng(0)
    samples = cfg.samples or 1200
    centres = rng.normal(scale=1.2, size=(4, 12))
    y = rng.integers(0, 4, size=samples)
    x = (centres[y] + rng.normal(size=(samples, 12))).astype(np.float32)[:, None, :]  # (N, 1, 12)
    return RawDataset(
        train_x=x,
        train_y=y.astype(np.int64),
        test_x=None,
        test_y=None,
        max_value=1,  # signals, not pixels
        class_names=("north", "east", "south", "west"),
        origin="byo.blobs (numpy, seed 0)",
        inputs={"blobs": hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()},
    )
