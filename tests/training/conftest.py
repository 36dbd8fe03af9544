"""Fixtures for the training tests: the digits dataset, prepared once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.config import DataConfig
from scalelab.data.prepare import prepare


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared copy of scikit-learn's digits (the embedded default dataset)."""
    root = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return root / prepare(DataConfig(name="digits", test_fraction=0.2))
