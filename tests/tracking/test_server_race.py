"""Jobs racing to create their study's experiment on a fresh `mlflow server` lose no run."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from scalelab.tracking.runs import RunNotRecorded, verify_recorded
from tests.tracking.server_race import JOBS, lab_job, naive_job, race

pytestmark = pytest.mark.slow


def test_racing_with_set_experiment_loses_runs_while_every_job_exits_0(mlflow_server: str) -> None:
    """The bug, reproduced (bounded): the losers of the creation race log into "Default"."""
    for _ in range(10):
        lost = race(mlflow_server, naive_job)
        assert lost.succeeded == JOBS, "every naive job exits 0"
        if lost.silently_lost:
            break
    assert lost.silently_lost, "10 races of set_experiment on a fresh server lost no run"
    client = MlflowClient(mlflow_server)
    strays = client.search_runs(["0"])
    assert len(strays) >= lost.silently_lost, "the lost runs are in the Default experiment"
    study = client.get_experiment_by_name(lost.experiment).experiment_id
    with pytest.raises(RunNotRecorded, match="it is FINISHED in experiment 0"):
        verify_recorded(mlflow_server, strays[0].info.run_id, study)  # what a lab job checks


def test_the_labs_jobs_lose_no_run_in_twenty_races_in_a_row(mlflow_server: str) -> None:
    """Each race is on an experiment no job has created yet, on one fresh server."""
    for attempt in range(20):
        result = race(mlflow_server, lab_job)
        assert (result.succeeded, result.recorded) == (JOBS, JOBS), f"race {attempt}: {result}"
    assert not MlflowClient(mlflow_server).search_runs(["0"]), "no run strayed into Default"
