"""A recorded training: its model and reports at the rung's paths; a learning-rate search keeps
the trial with the lowest validation loss, and every trial is an MLflow run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from scalelab.config import Config, DataConfig, ModelConfig, TrackingConfig, TrainerConfig
from scalelab.training import recorded
from scalelab.training.recorded import LR_SEARCH_FILE, rate_beyond, train_seed
from scalelab.training.saved import CHECKPOINT_FILE, load_network

RATES = [1e-4, 1e-3, 3e-2]


@pytest.fixture
def project(digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding prepared digits, as the working directory."""
    shutil.copytree(digits, tmp_path / "data/prepared/digits")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config(project: Path, **trainer: object) -> Config:
    return Config(
        data=DataConfig(name="digits"),
        model=ModelConfig(size="s", ladder={"s": {"width": 32, "depth": 2}}),
        trainer=TrainerConfig(max_epochs=3, batch_size=64, progress_bar=False, **trainer),
        tracking=TrackingConfig(uri=f"sqlite:///{project}/mlflow.db"),
    )


def test_a_learning_rate_search_keeps_the_trial_with_the_lowest_validation_loss(project: Path) -> None:
    train_seed(config(project, lr_search=RATES))

    reports = project / "reports/train/s/s0"
    trials = json.loads((reports / LR_SEARCH_FILE).read_text())
    assert [t["lr"] for t in trials] == RATES
    best = min(trials, key=lambda t: t["val/loss"])
    assert [t["chosen"] for t in trials] == [t is best for t in trials]
    metrics = json.loads((reports / "train_metrics.json").read_text())
    assert metrics["lr_search/lr"] == best["lr"] and metrics["val/loss"] == best["val/loss"]
    run = json.loads((reports / "run.json").read_text())
    assert run["run_id"] == best["run_id"], "the chosen trial is the rung's run: evaluate logs to it"
    assert run["trial_run_ids"] == [t["run_id"] for t in trials]
    assert run["lr_grid"] == RATES, "what the study's report checks the chosen rate against"

    # The chosen trial's weights are the rung's model; the trials' folders are gone.
    assert sorted(p.name for p in (project / "models/s").iterdir()) == ["s0"]
    assert not list((project / "checkpoints").glob("*")), "the search's scratch is cleared"
    _, meta = load_network(project / "models/s/s0" / CHECKPOINT_FILE)
    assert meta["run_id"] == best["run_id"]
    assert meta["trainer"]["optimizer"]["lr"] == best["lr"]

    # Every trial is a finished MLflow run, named and tagged by its rate.
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("digits-mlp").experiment_id
    runs = {r.info.run_id: r for r in client.search_runs([experiment])}
    assert set(runs) == set(run["trial_run_ids"])
    for trial in trials:
        found = runs[trial["run_id"]]
        assert found.info.status == "FINISHED" and found.info.run_name == f"mlp-s-s0 lr={trial['lr']:g}"
        assert found.data.params["trainer.optimizer.lr"] == str(trial["lr"])
        assert found.data.tags["lr_search.chosen"] == str(trial["chosen"]).lower()


@pytest.mark.parametrize(
    ("losses", "beyond"),
    [
        ({1e-4: 0.3, 3e-4: 0.2, 1e-3: 0.1}, 3e-3),  # best at the top: the grid goes on, x3 then x3.3
        ({1e-4: 0.3, 3e-4: 0.2, 1e-3: 0.15, 3e-3: 0.1}, 1e-2),
        ({1e-4: 0.1, 3e-4: 0.2, 1e-3: 0.3}, 3e-5),  # at the bottom: 3e-5, then 1e-5
        ({3e-5: 0.1, 1e-4: 0.15, 3e-4: 0.2, 1e-3: 0.3}, 1e-5),
        ({1e-4: 0.3, 3e-4: 0.1, 1e-3: 0.2}, None),  # inside: the grid brackets its best
        ({1e-4: 0.3, 3e-4: 0.2, 1e-3: float("nan")}, None),  # a diverged trial is no best
    ],
)
def test_a_search_extends_its_grid_beyond_the_end_that_holds_its_best(
    losses: dict[float, float], beyond: float | None
) -> None:
    assert rate_beyond([1e-4, 3e-4, 1e-3], losses) == beyond


def test_a_grid_extends_by_its_own_ratio_and_never_past_ten() -> None:
    assert rate_beyond([1e-3, 2e-3, 4e-3], {1e-3: 0.3, 2e-3: 0.2, 4e-3: 0.1}) == 8e-3
    assert rate_beyond([3.0, 10.0], {3.0: 0.2, 10.0: 0.1}) is None


def test_an_extended_search_trains_beyond_the_grid_until_its_best_is_inside_or_the_budget_ends(
    project: Path,
) -> None:
    # Three epochs at these tiny rates: the larger is always better, so the search extends.
    train_seed(config(project, lr_search=[1e-5, 3e-5], lr_search_extend=1))

    reports = project / "reports/train/s/s0"
    trials = json.loads((reports / LR_SEARCH_FILE).read_text())
    assert [t["lr"] for t in trials] == [1e-5, 3e-5, 9e-5], "one step beyond, at the grid's ratio"
    best = min(trials, key=lambda t: t["val/loss"])
    assert best["lr"] == 9e-5 and best["chosen"]
    run = json.loads((reports / "run.json").read_text())
    assert run["lr_grid"] == [1e-5, 3e-5, 9e-5], "the study's report flags a best still at the end"
    assert len(run["trial_run_ids"]) == 3


def test_a_search_stopped_between_trials_keeps_the_ones_it_finished(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = recorded._train
    rates: list[float] = []

    def stopped_before_the_second(cfg: Config, *args: object, **kwargs: object) -> object:
        rates.append(cfg.trainer.optimizer["lr"])
        if len(rates) == 2:
            raise KeyboardInterrupt  # Ctrl-C, or kill -9, after the first trial finished
        return train(cfg, *args, **kwargs)

    monkeypatch.setattr(recorded, "_train", stopped_before_the_second)
    with pytest.raises(KeyboardInterrupt):
        train_seed(config(project, lr_search=RATES))
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("digits-mlp").experiment_id
    [first] = client.search_runs([experiment])

    monkeypatch.setattr(recorded, "_train", train)
    train_seed(config(project, lr_search=RATES))  # the same command again

    trials = json.loads((project / "reports/train/s/s0" / LR_SEARCH_FILE).read_text())
    assert trials[0]["lr"] == RATES[0] and trials[0]["run_id"] == first.info.run_id, "kept, not retrained"
    runs = client.search_runs([experiment])
    assert len(runs) == len(RATES), "one run per rate: no trial trained twice"
    assert all(r.info.status == "FINISHED" for r in runs)


def test_without_a_search_one_run_is_trained_at_the_configured_rate(project: Path) -> None:
    train_seed(config(project))

    reports = project / "reports/train/s/s0"
    assert not (reports / LR_SEARCH_FILE).exists()
    run = json.loads((reports / "run.json").read_text())
    assert "trial_run_ids" not in run
    _, meta = load_network(project / "models/s/s0" / CHECKPOINT_FILE)
    assert meta["run_id"] == run["run_id"] and meta["trainer"]["optimizer"]["lr"] == 1e-3


def test_the_run_records_its_splits_as_mlflow_dataset_inputs(project: Path) -> None:
    cfg = config(project)
    cfg.data.train_samples = 500
    train_seed(cfg)

    run_id = json.loads((project / "reports/train/s/d500/s0/run.json").read_text())["run_id"]
    inputs = MlflowClient(f"sqlite:///{project}/mlflow.db").get_run(run_id).inputs.dataset_inputs
    manifest = json.loads((project / "data/prepared/digits/manifest.json").read_text())
    found = {
        i.dataset.name: (i.dataset.digest, [t.value for t in i.tags if t.key == "mlflow.data.context"])
        for i in inputs
    }
    assert found.keys() == {"digits-train-d500", "digits-val", "digits-test"}
    assert found["digits-val"] == (manifest["splits"]["val"]["sha256"][:16], ["validation"])
    assert found["digits-test"][1] == ["testing"] and found["digits-train-d500"][1] == ["training"]
    assert found["digits-train-d500"][0] != manifest["splits"]["train"]["sha256"][:16], (
        "a prefix is its own dataset"
    )
    sources = [json.loads(i.dataset.source) for i in inputs]
    assert all(Path(s["uri"]).is_file() for s in sources), "each source is the split's file"
