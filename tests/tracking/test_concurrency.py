"""Eight trainings logging at once to one fresh SQLite store lose nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import run, start

pytestmark = pytest.mark.slow

JOBS = 8


def test_eight_concurrent_trainings_share_a_fresh_sqlite_store(project: Path) -> None:
    run(["python", "-m", "pipelines.prepare"], project)
    assert not (project / "mlflow.db").exists(), "the store is created by the racing jobs themselves"
    children = [
        start(
            [
                "python",
                "-m",
                "pipelines.train",
                "model.size=xs",
                f"seed={seed}",
                "trainer.max_epochs=3",
                "trainer.progress_bar=false",
            ],
            project,
        )
        for seed in range(JOBS)
    ]
    outputs = [child.communicate(timeout=600)[0] for child in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    [experiment] = [e for e in client.search_experiments() if e.name == "digits-mlp"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(f"mlp-xs-s{s}" for s in range(JOBS))
    reference = runs[0].data
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.params.keys() == reference.params.keys(), "every param of every run arrived"
        assert r.data.metrics.keys() == reference.metrics.keys(), "every metric of every run arrived"
        assert len(client.get_metric_history(r.info.run_id, "val/loss")) == 3
        assert any(a.path == "config.yaml" for a in client.list_artifacts(r.info.run_id))
