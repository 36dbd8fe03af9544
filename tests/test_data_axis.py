"""A study with a data axis: a Hydra multirun over model size x training-set size, each cell in its
own place, ending in the joint law L(N, D)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import run
from tests.test_sweep import QUICK, mlflow_runs

pytestmark = pytest.mark.slow


def test_a_multirun_over_sizes_and_training_sets_fits_the_joint_law(prepared_project: Path) -> None:
    project = prepared_project
    sweep = ["model.size=xs,m,l", "data.train_samples=200,600", "seed=0"]
    result = run(["python", "-m", "pipelines.train", "-m", *sweep, *QUICK], project)
    assert "sweep ladder: 6 runs fitted" in result.stdout

    _, children = mlflow_runs(project)
    names = sorted(c.info.run_name for c in children)
    assert names == sorted(f"mlp-{size}-d{n}-s0" for size in ("xs", "m", "l") for n in (200, 600))
    assert {c.data.params["data.train_samples"] for c in children} == {"200", "600"}
    for size in ("xs", "m", "l"):
        for n in (200, 600):
            assert (project / f"models/{size}/d{n}/s0/model.ckpt").is_file(), "no two cells share a place"
            trained = json.loads((project / f"reports/train/{size}/d{n}/s0/train_metrics.json").read_text())
            assert trained["data/train_samples"] == n
            assert trained["train/flops"] == trained["model/flops_per_sample"] * trained["train/samples_seen"]
    study = json.loads((project / "reports/sweeps/ladder/scaling.json").read_text())
    assert study["runs"] == 6 and study["joint"]["runs"] == 6 and study["joint"]["cells"] == 6
    assert study["sizes"] == ["xs", "m", "l"], "the ladder: the runs with the most data"
    assert [r["seeds"] for r in study["rungs"]] == [1, 1, 1]
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    champion = client.get_model_version_by_alias("digits-mlp", "champion")
    key = f"{champion.tags['size']}-d{champion.tags['train_samples']}-s{champion.tags['seed']}"
    assert f"champion: {key} (val/loss" in result.stdout, "the champion is named with its training-set size"
    table = "reports/sweeps/ladder/scaling.csv"
    fitted = run(["python", "-m", "scalelab.scaling.fit", table, "--resamples", "5"], project)
    assert json.loads(fitted.stdout)["runs"] == 6, "the study's own table fits from the command line"


def test_dvc_repro_trains_every_rung_on_each_training_set_size(project: Path) -> None:
    tiny = ["sweep.sizes=[xs,m,l]", "sweep.data_sizes=[200,600]", *QUICK]
    run(["python", "-m", "scalelab.params_file", *tiny], project)
    output = run(["dvc", "repro"], project).stdout
    assert "Running stage 'train@m'" in output and "trained m-d600-s0" in output
    study = json.loads((project / "reports/scaling.json").read_text())
    assert study["runs"] == 6 and study["joint"]["cells"] == 6
    assert (project / "reports/runs/l/d200/s0/metrics.json").is_file()
    rung = json.loads((project / "reports/metrics/m.json").read_text())
    assert rung.keys() == {"d200/s0", "d600/s0"}, "dvc metrics: each run of the rung under its cell"
    assert "Stage 'train@m' didn't change" in run(["dvc", "repro"], project).stdout, "cached"
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)["data"]
    [flops] = plots["Test loss per run vs training FLOPs spent"]
    assert len(flops["content"]["data"]["values"]) == 6, "dvc plots: one point per run"


BUDGETS = ["trainer.batch_size=32", "data.compute_budget=4e6,1e7,2.5e7"]  # digits: 3 budgets x 3 sizes


def test_a_multirun_over_sizes_and_compute_budgets_fits_isoflop_profiles(prepared_project: Path) -> None:
    project = prepared_project
    sweep = ["model.size=xxs,xs,s", *BUDGETS, "seed=0"]
    result = run(["python", "-m", "pipelines.train", "-m", *sweep, *QUICK], project)
    assert "sweep ladder: 9 runs fitted" in result.stdout

    _, children = mlflow_runs(project)
    assert len(children) == 9 and {c.info.status for c in children} == {"FINISHED"}
    spent: dict[float, list[tuple[float, int]]] = {}
    for child in children:
        budget = float(child.data.params["data.compute_budget"])
        samples = int(child.data.params["data.train_samples"])
        assert child.info.run_name == f"mlp-{child.data.tags['size']}-d{samples}-s0"
        flops = child.data.metrics["train/flops"]
        assert 0.9 * budget < flops <= budget, "each run spends its budget (less the rounding of D)"
        spent.setdefault(budget, []).append((child.data.metrics["model/params"], samples))
    for cells in spent.values():
        by_size = [samples for _, samples in sorted(cells)]
        assert by_size == sorted(by_size, reverse=True), "within a budget, a bigger model gets less data"
    study = json.loads((project / "reports/sweeps/ladder/scaling.json").read_text())
    isoflop = study["isoflop"]
    assert [b["compute"] for b in isoflop["budgets"]] == [4e6, 1e7, 2.5e7]
    assert isoflop["flops_per_param_sample"] > 3 * 4, "3 epochs of ~6 FLOPs per parameter and sample"
    assert study["joint"]["runs"] == 9 and study["flags"] == isoflop["flags"] + [
        f for f in study["flags"] if f == "joint_law"
    ]
    for plot in ("isoflop.png", "optimal_vs_compute.png", "loss_vs_flops.png"):
        assert (project / f"reports/sweeps/ladder/scaling/{plot}").stat().st_size > 10_000, plot
    assert (
        "IsoFLOP profiles"
        in MlflowClient(f"sqlite:///{project}/mlflow.db")
        .get_run(mlflow_runs(project)[0].info.run_id)
        .data.tags["mlflow.note.content"]
    ), "the parent's description shows the profiles"


def test_dvc_repro_trains_every_rung_at_each_compute_budget(project: Path) -> None:
    study = ["sweep.sizes=[xxs,xs,s]", "sweep.compute_budgets=[4e6,1e7,2.5e7]", "trainer.batch_size=32"]
    run(["python", "-m", "scalelab.params_file", *study, *QUICK], project)
    output = run(["dvc", "repro"], project).stdout
    assert "Running stage 'train@s'" in output and "Running stage 'scaling'" in output
    report = json.loads((project / "reports/scaling.json").read_text())
    assert report["runs"] == 9 and len(report["isoflop"]["budgets"]) == 3
    assert "IsoFLOP profiles" in output, "the stage prints the study, verdict first"
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)["data"]
    assert {"reports/scaling/isoflop.png", "reports/scaling/optimal_vs_compute.png"} <= plots.keys()
