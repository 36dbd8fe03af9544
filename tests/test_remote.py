"""Shared storage: one clone runs the pipeline and pushes to the repo's DVC remote; a fresh clone
pulls, and `dvc repro` has nothing to do: the teammate gets data and models without recomputing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_project, run

pytestmark = pytest.mark.slow

TINY = ["sweep.sizes=[xs,s,m]", "trainer.max_epochs=2", "sweep.bootstrap=20", "trainer.progress_bar=false"]


def test_a_fresh_clone_pulls_results_instead_of_recomputing_them(tmp_path: Path) -> None:
    first = make_project(tmp_path / "first")
    shutil.copy2(ROOT / ".dvc/config", first / ".dvc/config")  # the repository's remote, as shipped
    run(["python", "-m", "scalelab.params_file", *TINY], first)
    run(["dvc", "repro"], first)
    # Metrics and reports go to git (they are small: `cache: false`); data and models to the remote.
    run(["git", "add", "-A"], first)
    run(["git", "commit", "-qm", "study"], first)
    run(["dvc", "push"], first)
    assert (tmp_path / "scalelab-dvc-storage").is_dir(), "the default remote is a folder beside the clone"

    second = tmp_path / "second"
    run(["git", "clone", "-q", str(first), str(second)], tmp_path)
    assert not (second / "models").exists()
    run(["dvc", "pull"], second)
    assert sorted(p.name for p in (second / "models").iterdir()) == ["m", "s", "xs"]
    status = run(["dvc", "status"], second).stdout
    assert "up to date" in status, status
    repro = run(["dvc", "repro"], second)
    assert "Running stage" not in repro.stdout + repro.stderr, "nothing is recomputed"
    shown = [json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout) for repo in (first, second)]
    metrics = [next(iter(s.values()))["data"]["reports/scaling.json"]["data"] for s in shown]
    assert metrics[0] == metrics[1] and metrics[0]["runs"] == 3
