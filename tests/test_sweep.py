"""Hydra multirun sweeps: one MLflow parent per sweep, evaluated children, a fit; failures named."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import runpy
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from mlflow import MlflowClient

from tests.conftest import run

pytestmark = pytest.mark.slow

QUICK = ["trainer.max_epochs=3", "trainer.progress_bar=false", "sweep.bootstrap=20"]


def mlflow_runs(project: Path) -> tuple[object, list]:
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("digits-mlp")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.info.run_name == "ladder"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def test_joblib_multirun_gives_a_parent_with_evaluated_children_and_a_fit(prepared_project: Path) -> None:
    project = prepared_project
    result = run(
        [
            "python",
            "-m",
            "pipelines.train",
            "-m",
            "model.size=xs,m,l",
            *QUICK,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
        ],
        project,
    )
    assert "sweep ladder: 3 runs fitted" in result.stdout

    parent, children = mlflow_runs(project)
    assert parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == ["mlp-l-s0", "mlp-m-s0", "mlp-xs-s0"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["sweep_id"] == parent.info.run_id
        assert 0 < child.data.metrics["test/acc"] <= 1, "each job evaluated its own checkpoint"
        assert child.data.metrics["model/params"] > 0 and child.data.metrics["train/flops"] > 0
    study = json.loads((project / "reports/sweeps/ladder/scaling.json").read_text())
    assert study["sizes"] == ["xs", "m", "l"]
    assert parent.data.metrics["loss_vs_params/alpha"] == pytest.approx(study["loss_vs_params"]["alpha"])
    # three rungs cannot be held out from: the verdict says so everywhere the study is reported
    assert study["credible"] is False and "no_holdout" in study["flags"]
    assert f"sweep ladder: {study['verdict']}" in result.stdout
    assert parent.data.tags["mlflow.note.content"].startswith(f"**{study['verdict']}**")
    assert parent.data.tags["scaling.credible"] == "false"
    assert not (project / "outputs").exists()


def test_a_diverging_rung_fails_with_its_reason_the_others_are_fitted_and_a_rerun_trains_only_it(
    prepared_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = prepared_project
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    import scalelab.training.recorded as recorded

    real_fit = recorded.fit

    def fit_that_diverges_on_s(model_cfg, trainer_cfg, *args, **kwargs):
        if model_cfg.size == "s":  # a step size no schema would allow: the loss overflows
            trainer_cfg = dataclasses.replace(
                trainer_cfg, optimizer={"_target_": "torch.optim.Adam", "lr": 1e30}
            )
        return real_fit(model_cfg, trainer_cfg, *args, **kwargs)

    # The real CLI, in this process so that one rung can be made to diverge.
    monkeypatch.setattr(recorded, "fit", fit_that_diverges_on_s)
    # (pipelines.train composes the checkout's conf/ here, not the project's: name its study)
    argv = ["train", "-m", "experiment=digits_mlp", "model.size=xs,s,m,l", *QUICK]
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            runpy.run_module("pipelines.train", run_name="__main__")
    finally:
        GlobalHydra.instance().clear()
    assert "s-s0 did not finish" in str(stopped.value)

    parent, children = mlflow_runs(project)
    status = {c.info.run_name: c.info.status for c in children}
    assert status == {
        "mlp-xs-s0": "FINISHED",
        "mlp-s-s0": "FAILED",
        "mlp-m-s0": "FINISHED",
        "mlp-l-s0": "FINISHED",
    }
    [diverged] = [c for c in children if c.info.run_name == "mlp-s-s0"]
    assert re.match(r"TrainingDiverged: train/loss became (nan|inf)", diverged.data.tags["failure.reason"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.missing"] == "s-s0"
    study = json.loads((project / "reports/sweeps/ladder/scaling.json").read_text())
    assert study["missing"] == ["s-s0"] and study["sizes"] == ["xs", "m", "l"]
    assert study["loss_vs_params"]["alpha"] > 0

    # The same command again (the rung fixed) trains only the missing rung; the runs that
    # finished are adopted by the new sweep, not trained twice.
    monkeypatch.setattr(recorded, "fit", real_fit)
    GlobalHydra.instance().clear()
    try:
        runpy.run_module("pipelines.train", run_name="__main__")
    finally:
        GlobalHydra.instance().clear()
    adopted = re.findall(r"trained (\S+) before, in an earlier try of this sweep", capsys.readouterr().out)
    assert sorted(adopted) == ["l-s0", "m-s0", "xs-s0"]
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    [last] = client.search_runs([parent.info.experiment_id], "attributes.run_name = 'ladder'", max_results=1)
    runs = client.search_runs([parent.info.experiment_id], "attributes.run_name != 'ladder'")
    finished = sorted(r.info.run_name for r in runs if r.info.status == "FINISHED")
    assert finished == ["mlp-l-s0", "mlp-m-s0", "mlp-s-s0", "mlp-xs-s0"], "each rung FINISHED once"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs if r.info.status == "FINISHED"} == {
        last.info.run_id
    }
    assert last.info.status == "FINISHED" and "sweep.missing" not in last.data.tags
    for finished_run in (r for r in runs if r.info.status == "FINISHED"):
        assert len(client.get_metric_history(finished_run.info.run_id, "test/loss")) == 1, "evaluated once"
    study = json.loads((project / "reports/sweeps/ladder/scaling.json").read_text())
    assert study["missing"] == [] and study["sizes"] == ["xs", "s", "m", "l"]


def test_a_sweep_whose_every_job_fails_says_so_and_fits_nothing(project: Path) -> None:
    # no `prepare`: every job stops on the missing data
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs,s", *QUICK]
    result = run(cmd, project, check=False)
    assert result.returncode != 0
    assert "manifest.json is missing: run `dvc repro prepare`" in result.stderr
    assert "sweep ladder: no run finished (xs-s0, s-s0)" in result.stderr
    assert not (project / "reports/sweeps").exists()
    parent, children = mlflow_runs(project)
    assert parent.info.status == "FAILED" and children == []


def children_of(project: Path, sweep: str, experiment: str = "digits-mlp") -> tuple[object, list]:
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    [parent] = [r for r in runs if r.info.run_name == sweep]
    return parent, [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def variants_table(project: Path, sweep: str = "ladder") -> list[dict[str, str]]:
    with (project / "reports/sweeps" / sweep / "variants.csv").open() as stream:
        return list(csv.DictReader(stream))


def test_a_sweep_over_another_setting_keeps_every_run_and_fits_a_law_per_variant(
    prepared_project: Path,
) -> None:
    project = prepared_project
    lrs = ["trainer.optimizer.lr=0.003", "trainer.optimizer.lr=0.01"]
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs,s,m", "trainer.optimizer.lr=0.003,0.01"]
    result = run([*cmd, *QUICK, "trainer.max_epochs=2"], project)

    # six runs, six places: the two learning rates of a size do not overwrite each other
    checkpoints = {p.relative_to(project).as_posix() for p in (project / "models").rglob("model.ckpt")}
    assert checkpoints == {f"models/{lr}/{size}/s0/model.ckpt" for lr in lrs for size in ("xs", "s", "m")}
    parent, children = children_of(project, "ladder")
    assert sorted(c.info.run_name for c in children) == sorted(
        f"mlp-{lr}-{size}-s0" for lr in lrs for size in ("xs", "s", "m")
    )
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["sweep.variant"] in lrs
        assert child.data.params["trainer.optimizer.lr"] == child.data.tags["sweep.variant"].split("=")[1]
        assert 0 < child.data.metrics["test/acc"] <= 1, "each job evaluated its own checkpoint"

    # a law per variant, and the variants side by side, the best (lowest validation loss) first
    rows = variants_table(project)
    assert sorted(row["variant"] for row in rows) == lrs
    for row in rows:
        study = json.loads((project / "reports/sweeps/ladder" / row["variant"] / "scaling.json").read_text())
        assert study["sizes"] == ["xs", "s", "m"] and study["runs"] == 3 == int(row["runs"])
        assert float(row["alpha"]) == pytest.approx(study["loss_vs_params"]["alpha"])
        val_losses = [
            c.data.metrics["val/loss"] for c in children if c.data.tags["sweep.variant"] == row["variant"]
        ]
        assert float(row["best_val/loss"]) == pytest.approx(min(val_losses))
    assert float(rows[0]["best_val/loss"]) <= float(rows[1]["best_val/loss"])
    best = rows[0]["variant"]
    assert parent.data.tags["sweep.best_variant"] == best
    assert f"sweep ladder [{best}]: 3 runs" in result.stdout
    assert f"champion: {rows[0]['best_run']} " in result.stdout
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    champion = client.get_model_version_by_alias("digits-mlp", "champion")
    assert champion.tags["variant"] == best
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"variants.csv", *lrs} <= artifacts


def test_a_sweep_over_datasets_keeps_its_runs_under_one_parent_and_names_no_champion(
    prepared_project: Path,
) -> None:
    project = prepared_project
    run(["python", "-m", "pipelines.prepare", "data=mnist1d"], project)
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs", "data=digits,mnist1d"]
    result = run([*cmd, *QUICK, "trainer.max_epochs=1"], project)

    # every run is a child of the sweep's parent, in the sweep's experiment, whatever its data
    parent, children = children_of(project, "ladder")
    assert sorted(c.info.run_name for c in children) == ["mlp-data=digits-xs-s0", "mlp-data=mnist1d-xs-s0"]
    assert {c.data.tags["dataset"] for c in children} == {"digits", "mnist1d"}
    assert all(c.info.status == "FINISHED" and "test/acc" in c.data.metrics for c in children)
    # losses on two validation sets do not compare: no best variant, no champion
    assert "champion: none registered: the variants differ in their data" in result.stdout
    assert "sweep.best_variant" not in parent.data.tags
    assert sorted(row["variant"] for row in variants_table(project)) == ["data=digits", "data=mnist1d"]
    assert MlflowClient(f"sqlite:///{project}/mlflow.db").search_registered_models() == []


def test_an_optuna_search_records_every_trial_and_minimises_the_best_validation_loss(
    prepared_project: Path,
) -> None:
    project = prepared_project
    cmd = ["python", "-m", "pipelines.train", "hparams_search=lr", "model.size=s", "hydra.sweeper.n_trials=3"]
    run([*cmd, *QUICK, "trainer.max_epochs=1"], project)  # no -m: the search config asks for it

    parent, trials = children_of(project, "lr_search")
    assert len(trials) == 3 and all(t.info.status == "FINISHED" for t in trials)
    lrs = {float(t.data.params["trainer.optimizer.lr"]) for t in trials}
    assert len(lrs) == 3 and all(1e-4 <= lr <= 1e-1 for lr in lrs), "each trial its own drawn rate"
    # the objective Optuna was told is each run's best validation loss
    optuna = yaml.safe_load((project / "multirun/optimization_results.yaml").read_text())
    best = min(trials, key=lambda t: t.data.metrics["val/loss"])
    assert optuna["best_value"] == pytest.approx(best.data.metrics["val/loss"])
    assert optuna["best_params"]["trainer.optimizer.lr"] == pytest.approx(
        float(best.data.params["trainer.optimizer.lr"])
    )
    rows = variants_table(project, "lr_search")
    assert rows[0]["variant"] == best.data.tags["sweep.variant"] == parent.data.tags["sweep.best_variant"]
    assert len(rows) == 3


def test_all_seeds_in_one_process_is_refused_in_a_multirun(project: Path) -> None:
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs,s", "all_seeds=true"]
    result = run(cmd, project, check=False)
    assert result.returncode != 0
    assert "scalelab: error: all_seeds=true trains every seed in one process" in result.stderr
    assert not (project / "models").exists()


@pytest.mark.parametrize(
    ("launcher", "message"),
    [
        ([], "trainer.devices=2 in a local multirun: DDP would start the whole sweep again"),
        (
            ["hydra/launcher=slurm", "hydra.launcher.tasks_per_node=1"],
            "hydra.launcher.tasks_per_node=1 with trainer.devices=2: on SLURM each DDP process is a task",
        ),
    ],
)
def test_a_ddp_sweep_a_launcher_cannot_run_is_refused_before_any_job(
    project: Path, launcher: list[str], message: str
) -> None:
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs,s", "trainer=ddp", *launcher]
    result = run(cmd, project, check=False)
    assert result.returncode != 0
    assert f"scalelab: error: {message}" in result.stderr
    assert not (project / "models").exists() and not (project / "mlflow.db").exists()
