"""End to end: the real `dvc repro` in a scratch git+DVC repo, then MLflow read back."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
import yaml
from mlflow import MlflowClient

from scalelab.data.prepared import load_split, read_manifest
from tests.conftest import run

pytestmark = pytest.mark.slow

TINY = ["model.size=m", "trainer.max_epochs=5", "trainer.progress_bar=false"]


def compose(repo: Path, *overrides: str) -> None:
    run(["python", "-m", "scalelab.params_file", *TINY, *overrides], repo)


def repro(repo: Path) -> str:
    result = run(["dvc", "repro"], repo)
    return result.stdout + result.stderr


def test_dvc_repro_trains_evaluates_logs_and_caches(project: Path) -> None:
    compose(project)
    output = repro(project)
    for stage in ("prepare", "train", "evaluate"):
        assert f"Running stage '{stage}'" in output

    metrics = json.loads((project / "reports/m/metrics.json").read_text())
    trained = json.loads((project / "reports/m/train_metrics.json").read_text())
    assert metrics["test/acc"] > 0.8, "5 epochs of the m MLP learn digits"
    assert (project / "reports/m/confusion.png").stat().st_size > 10_000
    assert (project / "reports/m/predictions.csv").read_text().startswith("actual,predicted\n")

    # MLflow: one run, self-describing, with epoch history, test metrics and a loadable model.
    uri = f"sqlite:///{project}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("digits-mlp")
    [run_info] = client.search_runs([experiment.experiment_id])
    run_id = run_info.info.run_id
    assert run_info.info.status == "FINISHED"
    assert run_info.info.run_name == "mlp-m-s0"
    data = run_info.data
    assert data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert (
        data.metrics["model/params"] == trained["model/params"] == 64 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10
    )
    assert len(client.get_metric_history(run_id, "val/loss")) == 5, "one point per epoch"
    assert data.params["trainer.max_epochs"] == "5"
    manifest = read_manifest(project / "data/prepared/digits")
    assert data.tags["dataset.fingerprint"] == manifest["fingerprint"]
    evaluation = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert evaluation == {"evaluation/metrics.json", "evaluation/confusion.png"}

    mlflow.set_tracking_uri(uri)
    model = mlflow.pytorch.load_model(f"runs:/{run_id}/model")
    x, y = load_split(project / "data/prepared/digits", "test")
    with torch.no_grad():
        accuracy = float((model(x).argmax(-1) == y).float().mean())
    assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-6)

    # Nothing changed: nothing runs, nothing is logged.
    assert "Data and pipelines are up to date." in repro(project)
    assert len(client.search_runs([experiment.experiment_id])) == 1

    # A training parameter changed: prepare is skipped, train and evaluate rerun.
    compose(project, "trainer.max_epochs=6")
    output = repro(project)
    assert "Stage 'prepare' didn't change, skipping" in output
    assert "Running stage 'train'" in output and "Running stage 'evaluate'" in output
    assert len(client.search_runs([experiment.experiment_id])) == 2

    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    assert "reports/m/metrics.json" in json.dumps(shown)


def commit_all(repo: Path) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], repo)


def test_dvc_exp_run_recomposes_params_from_conf(project: Path) -> None:
    compose(project)
    commit_all(project)
    overrides = ["model.size=s", "trainer.max_epochs=2", "trainer.progress_bar=false"]
    result = run(["dvc", "exp", "run", *[a for o in overrides for a in ("-S", o)]], project)
    assert "Running stage 'train'" in result.stdout + result.stderr
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["model"]["size"] == "s" and params["trainer"]["max_epochs"] == 2
    assert params["model"]["ladder"]["l"]["width"] == 256, "the rest comes from conf/"
    assert json.loads((project / "reports/s/metrics.json").read_text())["test/acc"] > 0


def test_dvc_exp_run_refuses_a_mistyped_value_before_running(project: Path) -> None:
    compose(project)
    commit_all(project)
    result = run(["dvc", "exp", "run", "-S", "model.width=abc"], project, check=False)
    assert result.returncode != 0
    assert "model.width" in result.stdout + result.stderr
    assert "Running stage" not in result.stdout + result.stderr
