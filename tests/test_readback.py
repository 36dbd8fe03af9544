"""Every kind of file the lab reads back, corrupted every way: one line naming the file, what is
wrong, and the command that rebuilds it; through a stage, exit status 2 and nothing written."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from scalelab import paths
from scalelab.config import Config, DataConfig, ModelConfig, TrackingConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.data.split_files import load_split, read_manifest
from scalelab.readback import UnreadableFile, rebuild_hint
from scalelab.scaling.study import read_record
from scalelab.training import resume
from scalelab.training.fit import fit
from scalelab.training.recorded import train_seed
from scalelab.training.saved import load_network
from tests.conftest import make_project, run

CONFIG = Config(
    data=DataConfig(name="digits"),
    model=ModelConfig(size="xs", ladder={"xs": {"width": 16, "depth": 2}}),
    trainer=TrainerConfig(max_epochs=2, batch_size=64, progress_bar=False),
)


@pytest.fixture(scope="module")
def project(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding one trained and evaluated run and a resumable epoch checkpoint."""
    from scalelab.evaluation import evaluate_run

    root = make_project(tmp_path_factory.mktemp("readback") / "project")
    shutil.copytree(digits, root / "data/prepared/digits")
    config = dataclasses.replace(CONFIG, tracking=TrackingConfig(uri=f"sqlite:///{root}/mlflow.db"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        train_seed(config)
        evaluate_run(config)
        data = PreparedDataModule(paths.prepared_dir("digits"), 64, 0, 32)
        checkpoints = root / "checkpoints/xs"  # left behind, as by a killed training
        fit(CONFIG.model, CONFIG.trainer, data, seed=0, out_dir=root / "scratch", checkpoints=checkpoints)
    return root


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(512))


def wrong_shape(path: Path) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps([1, 2, 3]))
    else:
        torch.save({"something": "else"}, path)


CORRUPTIONS = [truncate, zero_bytes, random_bytes, wrong_shape]

# kind of file -> (its path in the project, how the lab reads it, the rebuild command's start)
PREPARED = "data/prepared/digits"
LAST = "checkpoints/xs/last.ckpt"
KINDS: dict[str, tuple[str, Callable[[], object], str]] = {
    "model": ("models/xs/s0/model.ckpt", lambda: load_network("models/xs/s0/model.ckpt"), "train@xs"),
    "manifest": (f"{PREPARED}/manifest.json", lambda: read_manifest(PREPARED), "dvc repro -s -f prepare"),
    "split": (f"{PREPARED}/test.pt", lambda: load_split(PREPARED, "test"), "dvc repro -s -f prepare"),
    "run report": ("reports/train/xs/s0/run.json", lambda: read_record("xs", 0), "train@xs"),
    "train metrics": ("reports/train/xs/s0/train_metrics.json", lambda: read_record("xs", 0), "train@xs"),
    "test metrics": ("reports/runs/xs/s0/metrics.json", lambda: read_record("xs", 0), "evaluate@xs"),
    "epoch checkpoint": (LAST, lambda: resume.previous(Path(LAST).parent), "delete checkpoints/xs"),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_corrupted_file_is_named_with_what_is_wrong_and_how_to_rebuild_it(
    project: Path, kind: str, corrupt: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    relative, read, rebuild = KINDS[kind]
    monkeypatch.chdir(project)
    path = project / relative
    original = path.read_bytes()
    try:
        read()  # intact: reads
        corrupt(path)
        with pytest.raises(UnreadableFile) as err:
            read()
    finally:
        path.write_bytes(original)
    message = str(err.value)
    assert message.startswith(f"{relative} is unreadable: ") and rebuild in message, message
    assert "\n" not in message


def test_a_stage_meeting_a_corrupted_file_exits_2_with_one_line_and_writes_nothing(project: Path) -> None:
    model = project / "models/xs/s0/model.ckpt"
    original = model.read_bytes()
    shutil.rmtree(project / "reports/runs")
    truncate(model)
    try:
        result = run(["python", "-m", "pipelines.evaluate", "model.size=xs", "seed=0"], project, check=False)
    finally:
        model.write_bytes(original)
    assert result.returncode == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("scalelab: error:")]
    problem = "models/xs/s0/model.ckpt is unreadable: truncated or not a torch file"
    assert line.startswith(f"scalelab: error: {problem}")
    assert "Traceback" not in result.stderr
    assert not (project / "reports/runs").exists(), "nothing written"


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        (
            "models/m/s2/model.ckpt",
            "dvc repro -s -f train@m (or python -m pipelines.train model.size=m seed=2)",
        ),
        (
            "models/m/d1000/s2/model.ckpt",
            "(or python -m pipelines.train model.size=m data.train_samples=1000 seed=2)",
        ),
        ("reports/train/xl/d500/s0/train_metrics.json", "dvc repro -s -f train@xl"),
        ("reports/runs/xl/d500/s1/metrics.json", "dvc repro -s -f evaluate@xl"),
        (
            "models/trainer.optimizer.lr=0.01/m/d1000/s2/model.ckpt",
            "run the multirun that trained it again (variant trainer.optimizer.lr=0.01, model.size=m seed=2)",
        ),
        ("reports/runs/data=digits/xl/s1/metrics.json", "(variant data=digits, model.size=xl seed=1)"),
    ],
)
def test_the_rebuild_hint_names_the_run_on_a_data_axis_or_in_a_variant_too(path: str, hint: str) -> None:
    assert hint in rebuild_hint(Path(path))
