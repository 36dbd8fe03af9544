"""Cluster sweeps on a real single-node SLURM cluster (`make slurm-cluster`, with accounting):
`hydra/launcher=slurm` runs the ladder as one job array whose runs land under one MLflow parent
as a local sweep's do; a job cancelled with `scancel` ends FAILED and the sweep says so; a DVC
queue runs inside one SLURM allocation."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT, alive, free_port, live_store, make_project, port_free, run, start, wait_until

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "scripts/slurm-cluster"
PACKAGES = "slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
DAEMONS = ("slurmd", "slurmctld", "slurmdbd", "mariadb", "munged")
SWEEP = [
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
    "trainer.progress_bar=false",
    "sweep.bootstrap=20",
]


def ports_base() -> int:
    """A port p with p..p+3 free on loopback (the cluster's four daemons)."""
    for _ in range(50):
        base = free_port()
        if base < 65000 and all(port_free(base + i) for i in range(1, 4)):
            return base
    raise RuntimeError("no four free consecutive ports")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real SLURM cluster for this module; yields the environment its clients need."""
    missing = [
        tool for tool in ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd") if not shutil.which(tool)
    ]
    if missing or os.geteuid() != 0:
        why = f"{', '.join(missing)} not installed" if missing else "slurmd needs root"
        if os.environ.get("SCALELAB_REQUIRE_DATASETS") == "1":
            pytest.fail(f"SLURM cluster unavailable: {why} (.ci/run installs the Debian packages)")
        pytest.skip(
            f"SLURM cluster unavailable: {why} (apt install slurmctld slurmd slurmdbd munge mariadb-server)"
        )
    folder = Path(tempfile.mkdtemp(prefix="scalelab-slurm-", dir="/tmp"))  # munge's user must reach it
    env = {"SCALELAB_SLURM_DIR": str(folder), "SCALELAB_SLURM_PORT": str(ports_base())}
    here = tmp_path_factory.mktemp("cluster")
    started = run([str(SCRIPT), "start"], here, **env).stdout
    assert f"export SLURM_CONF={folder}/etc/slurm.conf" in started
    pids = [int((folder / "pid" / name).read_text()) for name in DAEMONS]
    try:
        yield {**env, "SLURM_CONF": str(folder / "etc/slurm.conf")}
    finally:
        run([str(SCRIPT), "stop"], here, **env)
        assert not [pid for pid in pids if alive(pid)], "every daemon is stopped by its PID"
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cluster_project(tmp_path: Path, slurm: dict[str, str]) -> Path:
    project = make_project(tmp_path / "project")
    run(["python", "-m", "pipelines.prepare"], project)
    return project


def study(project: Path) -> tuple[object, list]:
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("digits-mlp").experiment_id])
    [parent] = [r for r in runs if r.info.run_name == "ladder"]
    return parent, [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


def sacct_states(slurm: dict[str, str], *jobs: str, timeout: float = 60) -> dict[str, str]:
    """Accounting's job states, once each of `jobs` has ended there.

    slurmctld tells slurmdbd that a job ended a moment after its process exits; a sweep that
    already has the job's result may ask sooner and still read RUNNING.
    """

    def settled() -> dict[str, str] | None:
        out = run(["sacct", "-X", "-n", "-P", "-o", "JobID,State"], Path("/"), **slurm).stdout
        states = dict(line.split("|") for line in out.splitlines() if line)
        return states if all(states.get(job, "PENDING").split()[0] not in ACTIVE for job in jobs) else None

    return wait_until(settled, f"SLURM accounting recording the end of {', '.join(jobs)}", timeout, every=0.5)


def test_a_slurm_sweep_is_one_job_array_whose_runs_land_under_one_parent(
    cluster_project: Path, slurm: dict[str, str]
) -> None:
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs,s", "trainer.max_epochs=2", *SWEEP]
    result = run(cmd, cluster_project, **slurm)
    assert "sweep ladder: 2 runs fitted" in result.stdout

    parent, children = study(cluster_project)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.launcher"] == "SlurmLauncher"
    assert sorted(c.info.run_name for c in children) == ["mlp-s-s0", "mlp-xs-s0"]
    jobs = {c.data.tags["size"]: c.data.tags["slurm.job_id"] for c in children}
    array = jobs["xs"].split("_")[0]
    assert jobs == {"xs": f"{array}_0", "s": f"{array}_1"}, "one array, one task per size"
    assert f"SLURM job {array}_1: model.size=s" in result.stdout, "the user sees the job ids"
    states = sacct_states(slurm, *jobs.values())
    assert states[jobs["xs"]] == states[jobs["s"]] == "COMPLETED", "accounting saw both jobs end"
    client = MlflowClient(f"sqlite:///{cluster_project}/mlflow.db")
    for child in children:
        assert child.info.status == "FINISHED"
        assert 0 < child.data.metrics["test/acc"] <= 1, "each job evaluated its model"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val/loss")] == [0, 1]
        outputs = client.get_run(child.info.run_id).outputs
        assert outputs and outputs.model_outputs, "each job logged its model"
    assert (cluster_project / f"multirun/.submitit/{array}_0").is_dir(), "the jobs' logs are kept"


def test_a_ddp_training_runs_as_the_tasks_of_its_slurm_job(
    cluster_project: Path, slurm: dict[str, str]
) -> None:
    ddp = ["trainer=ddp", "hydra.launcher.tasks_per_node=2", "trainer.max_epochs=2"]
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs,s", *SWEEP, *ddp]
    assert "sweep ladder: 2 runs fitted" in run(cmd, cluster_project, **slurm).stdout

    _, children = study(cluster_project)
    assert sorted(c.info.run_name for c in children) == ["mlp-s-s0", "mlp-xs-s0"], (
        "one run per size, not per task"
    )
    for child in children:
        assert child.info.status == "FINISHED" and child.data.params["trainer.devices"] == "2"
        assert 0 < child.data.metrics["test/acc"] <= 1, "rank zero evaluated"
        logs = cluster_project / "multirun/.submitit" / child.data.tags["slurm.job_id"]
        second = next(logs.glob("*_1_log.err")).read_text()
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in second, "the job's second task was DDP rank 1"


def test_a_cancelled_job_fails_its_run_and_the_sweep_names_it(
    cluster_project: Path, slurm: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that `s` is still training when cancelled (xs alone takes ~20 s here).
    long = ["trainer.max_epochs=400", "trainer.early_stopping.enabled=false"]
    cmd = ["python", "-m", "pipelines.train", "-m", "model.size=xs,s", *long, *SWEEP]
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    sweep = start(cmd, cluster_project)
    try:
        job = wait_for_training(cluster_project, "s", sweep)
        run(["scancel", job], cluster_project, **slurm)
        output, _ = sweep.communicate(timeout=240)
    finally:
        sweep.kill()
    assert sweep.returncode != 0, output
    assert f"SLURM job {job} (model.size=s" in output and "CANCELLED" in output
    assert "sweep ladder: s-s0 did not finish (see their FAILED runs in MLflow)" in output

    parent, children = study(cluster_project)
    status = {c.data.tags["size"]: c.info.status for c in children}
    assert status == {"xs": "FINISHED", "s": "FAILED"}
    [cancelled] = [c for c in children if c.data.tags["size"] == "s"]
    assert "its sweep job ended without finishing it" in cancelled.data.tags["failure.reason"]
    assert parent.data.tags["sweep.missing"] == "s-s0"
    assert sacct_states(slurm, job)[job].startswith("CANCELLED")
    assert list((cluster_project / "checkpoints").glob("s-s0-*/last.ckpt")), "kept for a resume"


def wait_for_training(project: Path, size: str, sweep: subprocess.Popen, timeout: float = 180) -> str:
    """The SLURM job id of rung `size` once its MLflow run has logged an epoch."""
    client = live_store(project)

    def training() -> str | None:
        assert sweep.poll() is None, sweep.stdout.read()
        experiment = client.get_experiment_by_name("digits-mlp")
        running = "attributes.status = 'RUNNING'"
        for found in client.search_runs([experiment.experiment_id], running) if experiment else []:
            if found.data.tags.get("size") == size and "train/loss" in found.data.metrics:
                return found.data.tags["slurm.job_id"]
        return None

    return wait_until(training, f"rung {size} training", timeout, every=0.5)


def test_a_dvc_queue_runs_inside_one_slurm_allocation(cluster_project: Path, slurm: dict[str, str]) -> None:
    project = cluster_project
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "pipeline"], project)
    quick = ["-S", "trainer.max_epochs=2", "-S", "sweep.sizes=[xs,s]", "-S", "sweep.bootstrap=20"]
    for seed in (0, 1):
        run(["dvc", "exp", "run", "--queue", "-n", f"seed{seed}", "-S", f"seed={seed}", *quick], project)
    # The README's recipe: one allocation of 2 CPUs runs the queue, 2 experiments at a time.
    job = run(["sbatch", "--parsable", "--wait", "-c", "2", "--mem=4G", "-o", "queue.out",
               "--wrap", "dvc exp run --run-all -j 2"], project, **slurm)  # fmt: skip
    job_id = job.stdout.strip().split(";")[0]
    assert sacct_states(slurm, job_id)[job_id] == "COMPLETED", (project / "queue.out").read_text()
    assert "Queued" not in run(["dvc", "queue", "status"], project).stdout

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("digits-mlp").experiment_id])
    trained = {(r.data.tags["dvc.experiment"], r.data.tags["size"]) for r in runs if "size" in r.data.tags}
    assert trained == {(f"seed{s}", size) for s in (0, 1) for size in ("xs", "s")}
    assert {r.data.tags.get("slurm.job_id") for r in runs if "size" in r.data.tags} == {job_id}
    shown = run(["dvc", "exp", "show", "--json"], project).stdout
    assert '"seed0"' in shown and '"seed1"' in shown
