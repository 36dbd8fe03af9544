"""Bring your own: a model family and a dataset the lab does not ship, defined only in the user's
project (here `tests/bring_your_own/`, copied into a scratch project), go through every path the
built-in ones use: `dvc repro`, a Hydra multirun, MLflow, the fitted law and stored models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from scalelab.training.saved import load_network
from tests.conftest import run

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parent / "bring_your_own"
STUDY = "experiment=blobs_residual"


@pytest.fixture
def byo_project(project: Path) -> Path:
    """The scratch project with the user's package `byo/` and their config files in `conf/`."""
    shutil.copytree(EXAMPLE / "byo", project / "byo")
    for path in (EXAMPLE / "conf").rglob("*.yaml"):
        shutil.copy2(path, project / "conf" / path.relative_to(EXAMPLE / "conf"))
    return project


def runs_by_name(project: Path) -> dict[str, object]:
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("blobs-residual")
    assert experiment is not None, "the study's experiment is named <data>-<model>"
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


def test_a_users_family_and_dataset_run_the_dvc_study_and_a_multirun(
    byo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = byo_project
    run(["python", "-m", "scalelab.params_file", STUDY], project)
    run(["dvc", "repro"], project)

    manifest = json.loads((project / "data/prepared/blobs/manifest.json").read_text())
    assert manifest["input_shape"] == [1, 1, 12] and manifest["num_classes"] == 4
    assert manifest["origin"] == "byo.blobs (numpy, seed 0)"
    study = json.loads((project / "reports/scaling.json").read_text())
    assert study["sizes"] == ["a", "b", "c"]
    # hidden h, b blocks: 12h+h (stem) + 2b(h*h+h) (blocks) + 4h+4 (head)
    assert [r["params"] for r in study["rungs"]] == [284, 1612, 17732]
    assert "alpha" in study["loss_vs_params"]
    runs = runs_by_name(project)
    assert {"residual-a-s0", "residual-b-s0", "residual-c-s0"} <= runs.keys()
    for name in ("residual-a-s0", "residual-b-s0", "residual-c-s0"):
        assert runs[name].info.status == "FINISHED"
        assert 0 < runs[name].data.metrics["test/acc"] <= 1, "each rung was evaluated"
        assert runs[name].data.params["model._target_"] == "byo.residual.residual_mlp"

    monkeypatch.syspath_prepend(str(project))  # the user's package, as their project has it
    net, meta = load_network(project / "models/c/s0/model.ckpt")
    assert type(net).__name__ == "ResidualMLP" and len(net.blocks) == 2, "rebuilt from its target"
    assert meta["model"]["ladder"]["c"] == {"hidden": 64, "blocks": 2}

    sweep = ["python", "-m", "pipelines.train", "-m", STUDY, "model.size=a,b,c", "sweep.name=byo-multirun"]
    result = run(sweep, project)
    assert "sweep byo-multirun: 3 runs fitted" in result.stdout
    parent = runs_by_name(project)["byo-multirun"]
    assert parent.info.status == "FINISHED" and "loss_vs_params/alpha" in parent.data.metrics


def test_a_family_that_cannot_take_its_rung_is_refused_in_one_line(byo_project: Path) -> None:
    project = byo_project
    run(["python", "-m", "pipelines.prepare", STUDY], project)
    result = run(["python", "-m", "pipelines.train", STUDY, "+model.ladder.b.depth=3"], project, check=False)
    assert result.returncode == 2
    [line] = [line for line in result.stderr.splitlines() if "cannot take" in line]
    assert "model residual (byo.residual.residual_mlp) cannot take" in line and "depth" in line
    assert "Traceback" not in result.stderr
