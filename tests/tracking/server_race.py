"""Jobs racing to create one experiment on a fresh `mlflow server`, and where their runs land.

`python -m tests.tracking.server_race URL --rounds 20` races `--jobs` forked processes per
round, each round on an experiment no job has created yet, once the naive way
(`mlflow.set_experiment`, then a run) and once the lab's way
(`scalelab.tracking.store.ensure_experiment`, a run in that experiment, then
`scalelab.tracking.runs.verify_recorded`), and prints how many runs each way lost.
"""

from __future__ import annotations

import argparse
import multiprocessing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

JOBS = 8


def naive_job(uri: str, name: str, barrier: Barrier) -> None:
    """What a script written from MLflow's quickstart does: `set_experiment`, then a run."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    barrier.wait()
    mlflow.set_experiment(name)
    with mlflow.start_run():
        mlflow.log_param("job", "naive")


def lab_job(uri: str, name: str, barrier: Barrier) -> None:
    """What every scalelab training does: its own experiment id, and the run checked at the end."""
    import mlflow

    from scalelab.tracking.runs import verify_recorded
    from scalelab.tracking.store import ensure_experiment

    mlflow.set_tracking_uri(uri)
    barrier.wait()
    experiment_id = ensure_experiment(uri, name)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("job", "lab")
    verify_recorded(uri, run.info.run_id, experiment_id)


@dataclass(frozen=True)
class Round:
    """One race: its experiment, how many jobs ran and exited 0, and how many runs it holds."""

    experiment: str
    jobs: int
    succeeded: int
    recorded: int

    @property
    def silently_lost(self) -> int:
        """Runs missing from the experiment although their job exited 0."""
        return max(0, self.succeeded - self.recorded)


def race(uri: str, job: Callable[[str, str, Barrier], None], jobs: int = JOBS) -> Round:
    """Fork `jobs` processes that start `job` at one moment on a new experiment name."""
    from mlflow import MlflowClient

    name = f"race-{uuid.uuid4().hex[:12]}"
    fork = multiprocessing.get_context("fork")  # cheap: mlflow is imported once, here
    barrier = fork.Barrier(jobs, timeout=60)
    children = [fork.Process(target=job, args=(uri, name, barrier)) for _ in range(jobs)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    succeeded = sum(child.exitcode == 0 for child in children)
    experiment = MlflowClient(uri).get_experiment_by_name(name)
    recorded = len(MlflowClient(uri).search_runs([experiment.experiment_id])) if experiment else 0
    return Round(name, jobs, succeeded, recorded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri", help="a fresh `mlflow server`, e.g. http://127.0.0.1:5000")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=JOBS)
    args = parser.parse_args()
    for label, job in (("naive (mlflow.set_experiment)", naive_job), ("scalelab", lab_job)):
        rounds = [race(args.uri, job, args.jobs) for _ in range(args.rounds)]
        lossy = sum(r.silently_lost > 0 for r in rounds)
        failed = sum(r.jobs - r.succeeded for r in rounds)
        lost = sum(r.silently_lost for r in rounds)
        print(f"{label}: {lossy} of {args.rounds} rounds lost runs silently ({lost} runs); ", end="")
        print(f"{failed} jobs failed")


if __name__ == "__main__":
    main()
