"""End to end: the real `dvc repro` / `dvc exp run` in a scratch git+DVC repo, MLflow read back."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
import yaml
from mlflow import MlflowClient

from scalelab.data.split_files import load_split, read_manifest
from scalelab.evaluation import EVALUATION_FILES
from tests.conftest import run, run_queue

pytestmark = pytest.mark.slow

TINY = ["sweep.sizes=[xs,m,l]", "trainer.max_epochs=5", "trainer.progress_bar=false", "sweep.bootstrap=20"]


def compose(repo: Path, *overrides: str) -> None:
    run(["python", "-m", "scalelab.params_file", *TINY, *overrides], repo)


def repro(repo: Path) -> str:
    result = run(["dvc", "repro"], repo)
    return result.stdout + result.stderr


def test_dvc_repro_runs_the_ladder_and_the_fit_then_caches(project: Path) -> None:
    compose(project)
    output = repro(project)
    for stage in ("prepare", "train@xs", "train@l", "evaluate@m", "scaling"):
        assert f"Running stage '{stage}'" in output

    reports = project / "reports"
    metrics = json.loads((reports / "runs/m/s0/metrics.json").read_text())
    trained = json.loads((reports / "train/m/s0/train_metrics.json").read_text())
    assert metrics["test/acc"] > 0.7, "5 epochs of the m MLP learn digits"
    assert (reports / "runs/m/s0/confusion.png").stat().st_size > 10_000
    assert (reports / "runs/m/s0/predictions.csv").read_text().startswith("actual,predicted\n")
    study = json.loads((reports / "scaling.json").read_text())
    assert study["sizes"] == ["xs", "m", "l"] and study["missing"] == []
    assert study["loss_vs_params"]["alpha"] > 0
    assert study["largest"]["size"] == "l"
    assert len((reports / "scaling.csv").read_text().splitlines()) == 4
    for plot in ("loss_vs_params", "acc_vs_params", "loss_vs_flops"):
        assert (reports / f"scaling/{plot}.png").stat().st_size > 10_000

    # DVC itself sees every run: per-rung test metrics, per-epoch curves, the champion's confusion.
    shown = json.dumps(json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout))
    rung = json.loads((reports / "metrics/m.json").read_text())
    assert rung["s0"]["test/acc"] == metrics["test/acc"] and "reports/metrics/m.json" in shown
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)["data"]
    for size in ("xs", "m", "l"):  # a plot per run: train/loss and val/loss of every epoch
        curve = plots[f"reports/history/{size}/s0.csv"][0]["content"]["data"]["values"]
        assert sorted((int(row["epoch"]), row["field"]) for row in curve) == [
            (epoch, field) for epoch in range(5) for field in ("train/loss", "val/loss")
        ]
    confusion = plots["Test confusion of the champion"][0]["content"]["data"]["values"]
    assert len(confusion) == len(load_split(project / "data/prepared/digits", "test")[1])
    assert {"actual", "predicted"} <= confusion[0].keys()

    # MLflow: a parent run "ladder" with one child per rung, each self-describing.
    uri = f"sqlite:///{project}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("digits-mlp")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.info.run_name == "ladder"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["mlp-l-s0", "mlp-m-s0", "mlp-xs-s0"]
    assert parent.data.metrics["loss_vs_params/alpha"] == pytest.approx(study["loss_vs_params"]["alpha"])
    assert parent.info.start_time == min(c.info.start_time for c in children), "it spans the study"
    assert "| m | 0 |" in parent.data.tags["mlflow.note.content"]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "scaling.json",
        "scaling.csv",
        "scaling",
    }

    [child] = [r for r in children if r.info.run_name == "mlp-m-s0"]
    run_id = child.info.run_id
    assert child.info.status == "FINISHED"
    data = child.data
    assert data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert (
        data.metrics["model/params"]
        == trained["model/params"]
        == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    )
    assert data.metrics["train/flops"] == trained["train/flops"] > 6 * 4 * trained["train/samples_seen"]
    assert len(client.get_metric_history(run_id, "val/loss")) == 5, "one point per epoch"
    assert data.params["trainer.max_epochs"] == "5"
    manifest = read_manifest(project / "data/prepared/digits")
    assert data.tags["dataset.fingerprint"] == manifest["fingerprint"]
    assert {a.path for a in client.list_artifacts(run_id, "evaluation")} == {
        f"evaluation/{name}" for name in ("metrics.json", *EVALUATION_FILES)
    }
    mlflow.set_tracking_uri(uri)
    model = mlflow.pytorch.load_model(f"runs:/{run_id}/model")
    x, y = load_split(project / "data/prepared/digits", "test")
    with torch.no_grad():
        accuracy = float((model(x).argmax(-1) == y).float().mean())
    assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-6)

    # Nothing changed: nothing runs, nothing is logged.
    assert "Data and pipelines are up to date." in repro(project)
    assert len(client.search_runs([experiment.experiment_id])) == 4

    # The fit alone rerun (new fitting code, say): the same study, so the same parent and champion.
    [version] = client.search_model_versions("name = 'digits-mlp'")
    run(["dvc", "repro", "--force", "--single-item", "scaling"], project)
    again = client.search_runs([experiment.experiment_id])
    assert len(again) == 4 and parent.info.run_id in {r.info.run_id for r in again}
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    assert [v.version for v in client.search_model_versions("name = 'digits-mlp'")] == [version.version]

    # One rung edited: that rung and the fit rerun, nothing else.
    compose(project, "model.ladder.m.width=48")
    output = repro(project)
    ran = {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}
    assert ran == {"train@m", "evaluate@m", "scaling"}
    # A new m run makes a new study: a new parent takes the three runs it was fitted to.
    # (Both parents start when their earliest run did, xs's: tell them apart by id, not by time.)
    parents = client.search_runs([experiment.experiment_id], "attributes.run_name = 'ladder'")
    [newest] = [r for r in parents if r.info.run_id != parent.info.run_id]
    adopted = f"tags.`mlflow.parentRunId` = '{newest.info.run_id}'"
    assert len(client.search_runs([experiment.experiment_id], adopted)) == 3

    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    assert "loss_vs_params" in json.dumps(shown)


def commit_all(repo: Path) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)


def test_dvc_exp_run_recomposes_params_from_conf(project: Path) -> None:
    compose(project)
    commit_all(project)
    overrides = ["sweep.sizes=[s]", "sweep.seeds=[0,1]", "trainer.max_epochs=2", "trainer.progress_bar=false"]
    result = run(["dvc", "exp", "run", *[a for o in overrides for a in ("-S", o)]], project)
    output = result.stdout + result.stderr
    assert output.count("Running stage 'train@s'") == 1, "one stage, one process, for the rung's seeds"
    assert "trained s-s0" in output and "trained s-s1" in output and "evaluated s-s1" in output
    assert sorted(p.name for p in (project / "models/s").iterdir()) == ["s0", "s1"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["sweep"]["sizes"] == ["s"] and params["trainer"]["max_epochs"] == 2
    assert params["model"]["ladder"]["l"]["width"] == 256, "the rest comes from conf/"
    assert params["sweep"]["bootstrap"] == 1000, "not the TINY override: -S recomposes from conf/"
    study = json.loads((project / "reports/scaling.json").read_text())
    assert study["sizes"] == ["s"] and study["runs"] == 2
    assert study["reasons"][0] == "1 rung finished; a law needs 3 or more"

    # Settings that cannot change a model (runtime-only ones, where runs are recorded) rerun no
    # training and no evaluation.
    runtime = ["trainer.progress_bar=true", "trainer.num_threads=1", "tracking.log_model=false"]
    again = run(["dvc", "exp", "run", *[a for o in [*overrides, *runtime] for a in ("-S", o)]], project)
    assert "Running stage 'train@" not in again.stdout + again.stderr
    assert "Running stage 'evaluate@" not in again.stdout + again.stderr


def test_dvc_exp_run_refuses_a_mistyped_value_before_running(project: Path) -> None:
    compose(project)
    commit_all(project)
    result = run(["dvc", "exp", "run", "-S", "model.width=abc"], project, check=False)
    assert result.returncode != 0
    assert "model.width" in result.stdout + result.stderr
    assert "Running stage" not in result.stdout + result.stderr


def test_queued_experiments_are_studies_compared_side_by_side(project: Path) -> None:
    compose(project)
    commit_all(project)
    # -S recomposes params.yaml from conf/, so the tiny settings go on the command line too.
    settings = [a for o in ["seed=0,1", *TINY] for a in ("-S", o)]
    run(["dvc", "exp", "run", "--queue", *settings], project)
    status = run_queue(project, workers=2)
    assert status.count("Success") == 2, status

    rows = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    studies = {}
    for baseline in rows:
        for exp in baseline.get("experiments") or []:
            data = exp["revs"][0]["data"]
            seed = data["params"]["params.yaml"]["data"]["seed"]
            studies[seed] = data["metrics"]["reports/scaling.json"]["data"]
    assert sorted(studies) == [0, 1]
    for study in studies.values():  # DVC shows the numbers of scaling.json (not its lists)
        assert study["runs"] == 3 and study["missing_runs"] == 0, study
        assert study["loss_vs_params"]["alpha"] > 0 and 0 < study["largest"]["test/acc"] <= 1
    assert studies[0]["largest"]["test/loss"] != studies[1]["largest"]["test/loss"], "seeds differ"

    # Both studies logged to the repository's store, not to the throwaway copies DVC ran them in.
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("digits-mlp").experiment_id])
    parents = [r for r in runs if r.info.run_name.startswith("ladder-")]
    assert len(parents) == 2
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == 3 and {c.data.tags["dvc.experiment"] for c in children} == {
            parent.data.tags["dvc.experiment"]
        }
