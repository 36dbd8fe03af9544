"""The seed's claim on real data: its MLP on Fashion-MNIST, 10 epochs, reaches test accuracy 0.88."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalelab.config import DataConfig
from tests.conftest import require_dataset, run

pytestmark = pytest.mark.slow

SYSTEM_DIR = Path(DataConfig(name="fashion_mnist").system_dir or "/usr/share/datasets/fashion-mnist")


@pytest.fixture
def fashion_available() -> None:
    require_dataset(SYSTEM_DIR / "train-images-idx3-ubyte.gz", "apt install dataset-fashion-mnist")


def test_seed_mlp_reaches_088_on_fashion_mnist(project: Path, fashion_available: None) -> None:
    # A plain PyTorch loop with these settings and a 54k/6k split gets 0.882-0.887 over 3 seeds.
    args = ["data=fashion_mnist", "trainer.progress_bar=false"]
    for stage in ("prepare", "train", "evaluate"):
        run(["python", "-m", f"pipelines.{stage}", *args], project)
    manifest = json.loads((project / "data/prepared/fashion_mnist/manifest.json").read_text())
    assert {s: manifest["splits"][s]["count"] for s in ("train", "val", "test")} == {
        "train": 54_000,
        "val": 6_000,
        "test": 10_000,
    }
    assert manifest["origin"] == str(SYSTEM_DIR)
    metrics = json.loads((project / "reports/runs/l/s0/metrics.json").read_text())
    assert metrics["test/acc"] >= 0.88
