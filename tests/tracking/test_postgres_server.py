"""A team tracking server: `make mlflow-server` (PostgreSQL + proxied artifacts) takes a sweep of
two parallel jobs whole — runs, metrics, plots, models, the fit and the champion — and stops."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT, alive, free_port, run

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "scripts/mlflow-server"


@pytest.fixture
def server_dir() -> Path:
    """A folder PostgreSQL's own user can reach (pytest's temp dirs are private to root)."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        if os.environ.get("SCALELAB_REQUIRE_DATASETS") == "1":
            pytest.fail("PostgreSQL is missing: .ci/run must install postgresql")
        pytest.skip("PostgreSQL is not installed (apt install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="scalelab-server-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_parallel_sweep_lands_whole_on_mlflow_over_postgresql(project: Path, server_dir: Path) -> None:
    ports = {"SCALELAB_SERVER_PORT": str(free_port()), "SCALELAB_PG_PORT": str(free_port())}
    env = {"SCALELAB_SERVER_DIR": str(server_dir), **ports}
    started = run([str(SCRIPT), "start"], project, **env).stdout
    url = f"http://127.0.0.1:{ports['SCALELAB_SERVER_PORT']}"
    assert url in started and "make mlflow-server-stop" in started
    pids = [
        int((server_dir / "mlflow.pid").read_text()),
        int((server_dir / "pg/postmaster.pid").read_text().split()[0]),
    ]
    try:
        run(["python", "-m", "pipelines.prepare"], project)
        sweep = [
            "model.size=xs,s,m",
            "trainer.max_epochs=2",
            "trainer.progress_bar=false",
            "sweep.bootstrap=20",
        ]
        launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"tracking.uri={url}"]
        assert (
            "3 runs fitted"
            in run(["python", "-m", "pipelines.train", "-m", *sweep, *launcher], project).stdout
        )

        client = MlflowClient(url)
        runs = client.search_runs([client.get_experiment_by_name("digits-mlp").experiment_id])
        [parent] = [r for r in runs if r.info.run_name == "ladder"]
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(c.info.run_name for c in children) == ["mlp-m-s0", "mlp-s-s0", "mlp-xs-s0"]
        for child in children:
            assert child.info.status == "FINISHED"
            assert {"test/acc", "model/params", "val/loss"} <= child.data.metrics.keys()
            assert len(client.get_metric_history(child.info.run_id, "val/loss")) == 2
            assert child.outputs.model_outputs, "the model went through the server's artifact proxy"
            evaluation = {a.path for a in client.list_artifacts(child.info.run_id, "evaluation")}
            assert "evaluation/confusion.png" in evaluation
        assert "loss_vs_params/alpha" in parent.data.metrics
        plots = {a.path for a in client.list_artifacts(parent.info.run_id, "scaling")}
        assert "scaling/loss_vs_params.png" in plots
        assert client.get_model_version_by_alias("digits-mlp", "champion").run_id in {
            c.info.run_id for c in children
        }
        assert any((server_dir / "artifacts").rglob("*.png")), "artifacts are stored by the server"
        assert not (project / "mlflow.db").exists(), "nothing went to a local store"
    finally:
        stopped = run([str(SCRIPT), "stop"], project, **env).stdout
    assert "stopped" in stopped
    assert not any(alive(pid) for pid in pids), "the server and PostgreSQL are gone"
