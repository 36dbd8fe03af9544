"""The CNN family and the speech task run through all three sweep paths, like the MLP:
`dvc repro`, a Hydra multirun, and queued DVC experiments — on tiny settings (CI time matters)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import run, run_queue, speech_subset

pytestmark = pytest.mark.slow

TINY = [
    "sweep.sizes=[xs,s]",
    "sweep.seeds=[0]",
    "trainer.max_epochs=2",
    "sweep.bootstrap=20",
    "trainer.progress_bar=false",
]


def study_runs(project: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def children_of(runs: list, parent) -> list[str]:
    return sorted(
        r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    )


def test_speech_study_through_dvc_repro_reports_accuracy_per_speaker(project: Path, fsdd: Path) -> None:
    wavs = speech_subset(fsdd, project.parent / "wavs")
    overrides = ["experiment=spoken_digits_cnn", f"data.root={wavs}", "data.val_fraction=0.25", *TINY]
    run(["python", "-m", "scalelab.params_file", *overrides], project)
    run(["dvc", "repro"], project)

    manifest = json.loads((project / "data/prepared/spoken_digits/manifest.json").read_text())
    assert manifest["input_shape"] == [1, 32, 64] and manifest["splits"]["test"]["count"] == 40
    for size in ("xs", "s"):
        reports = project / f"reports/runs/{size}/s0"
        with (reports / "accuracy_by_group.csv").open() as table:
            rows = [r for r in csv.DictReader(table) if r["by"] == "speaker"]
        assert [(r["group"], r["count"]) for r in rows] == [("jackson", "20"), ("theo", "20")]
        metrics = json.loads((reports / "metrics.json").read_text())
        theo = metrics["test/acc_speaker/theo"]
        assert theo == pytest.approx(float(rows[1]["accuracy"])) and 0 <= theo <= 1
    study = json.loads((project / "reports/scaling.json").read_text())
    assert study["sizes"] == ["xs", "s"]

    runs = study_runs(project, "spoken_digits-cnn")
    [parent] = [r for r in runs if r.info.run_name.startswith("spoken_digits_cnn")]
    assert children_of(runs, parent) == ["cnn-s-s0", "cnn-xs-s0"]
    child = next(r for r in runs if r.info.run_name == "cnn-xs-s0")
    assert {
        "test/acc_speaker/jackson",
        "test/acc_speaker/theo",
        "model/flops_per_sample",
    } <= child.data.metrics.keys()
    artifacts = MlflowClient(f"sqlite:///{project}/mlflow.db").list_artifacts(child.info.run_id, "evaluation")
    shown = {a.path.removeprefix("evaluation/") for a in artifacts}
    assert {"confusion.png", "per_class.csv", "accuracy_by_group.csv", "misclassified.png"} <= shown


@pytest.mark.parametrize("task", ["image", "speech"])
def test_cnn_ladders_through_a_hydra_multirun(project: Path, fsdd: Path, task: str) -> None:
    if task == "image":
        data, experiment = ["model=cnn"], "digits-cnn"  # 8x8 digits: the CNN on its smallest images
    else:
        wavs = speech_subset(fsdd, project.parent / "wavs")
        data, experiment = ["experiment=spoken_digits_cnn", f"data.root={wavs}"], "spoken_digits-cnn"
    run(["python", "-m", "pipelines.prepare", *data], project)
    sweep = ["model.size=xs,s,m", *TINY[1:], "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = run(["python", "-m", "pipelines.train", "-m", *data, *sweep], project)
    assert "3 runs fitted" in result.stdout  # three sizes: enough for the three-parameter law

    runs = study_runs(project, experiment)
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert children_of(runs, parent) == ["cnn-m-s0", "cnn-s-s0", "cnn-xs-s0"]
    flops = {r.info.run_name: r.data.metrics["model/flops_per_sample"] for r in runs if r != parent}
    assert flops["cnn-m-s0"] > flops["cnn-s-s0"] > flops["cnn-xs-s0"] > 0
    assert "loss_vs_params/alpha" in parent.data.metrics
    plots = MlflowClient(f"sqlite:///{project}/mlflow.db").list_artifacts(parent.info.run_id)
    assert any(a.path.endswith("loss_vs_params.png") for a in plots) or any(a.is_dir for a in plots)


def test_queued_experiments_run_the_image_and_speech_studies(project: Path, fsdd: Path) -> None:
    wavs = speech_subset(fsdd, project.parent / "wavs")
    run(["python", "-m", "scalelab.params_file"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "init"], project)
    tiny = [a for o in TINY for a in ("-S", o)]
    run(["dvc", "exp", "run", "--queue", "-n", "image", "-S", "model=cnn", *tiny], project)
    speech = ["-S", "experiment=spoken_digits_cnn", "-S", f"data.root={wavs}", "-S", "data.val_fraction=0.25"]
    run(["dvc", "exp", "run", "--queue", "-n", "speech", *speech, *tiny], project)
    status = run_queue(project, workers=2)
    assert status.count("Success") == 2, status

    shown = {}
    for baseline in json.loads(run(["dvc", "exp", "show", "--json"], project).stdout):
        for exp in baseline.get("experiments") or []:
            data = exp["revs"][0]["data"]
            shown[exp["revs"][0]["name"]] = (data["params"]["params.yaml"]["data"], data["metrics"])
    assert shown["image"][0]["model"]["name"] == "cnn" and shown["image"][0]["data"]["name"] == "digits"
    assert shown["speech"][0]["data"]["name"] == "spoken_digits"
    for _, metrics in shown.values():
        assert metrics["reports/scaling.json"]["data"]["runs"] == 2
    for experiment in ("digits-cnn", "spoken_digits-cnn"):
        assert len([r for r in study_runs(project, experiment) if "mlflow.parentRunId" in r.data.tags]) == 2
