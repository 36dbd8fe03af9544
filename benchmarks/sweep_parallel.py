"""Benchmark: a sweep run sequentially vs with 2 parallel workers, and what oversubscribing costs.

1. Hydra multirun over Fashion-MNIST rungs that take >= 10 s each: the basic launcher (one
   job after another, 2 threads) vs the joblib launcher with 2 workers (one thread each), and
   the basic launcher with one thread (what 2 workers would give if they scaled perfectly: it
   separates the launcher's efficiency from how well torch already uses 2 cores); then,
   on a short run, 2 workers that each insist on 2 threads (trainer.num_threads=2: 4 threads on
   2 cores, the oversubscription scalelab's default avoids).
2. Two queued DVC experiments (seeds 0 and 1, a small digits ladder): `dvc queue start -j 1`
   vs `-j 2`.

    python -m benchmarks.sweep_parallel     (or: make bench)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import save, table, timed, venv_env

ROOT = Path(__file__).resolve().parents[1]
# 4 jobs of 10-15 s each (two rungs x two seeds, 20 epochs): long enough that start-up is small.
LADDER = [
    "experiment=digits_mlp",  # the seed's ladder (l = 784-256-128-10 on Fashion-MNIST), one seed
    "model.size=m,l",
    "seed=0,1",
    "data=fashion_mnist",
    "trainer.progress_bar=false",
    "sweep.bootstrap=50",
]
EPOCHS = "trainer.max_epochs=20"
SHORT = "trainer.max_epochs=3"  # enough to show what oversubscription does, without waiting 10x
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
QUEUE = ["experiment=digits_mlp", "sweep.sizes=[xs,s,m]", "trainer.progress_bar=false", "sweep.bootstrap=50"]


def clone(tmp: Path, name: str) -> Path:
    """A fresh clone of this repository (its committed state) in `tmp/name`."""
    repo = tmp / name
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, env=venv_env())
    return repo


def multirun(repo: Path, *extra: str) -> float:
    """Wall time of one Hydra multirun over LADDER, from a clean models/ folder."""
    shutil.rmtree(repo / "models", ignore_errors=True)
    return timed(["python", "-m", "pipelines.train", "-m", *LADDER, *extra], repo)


def queued(repo: Path, jobs: int) -> float:
    """Wall time of two queued experiments (seeds 0 and 1) run by `dvc queue start -j jobs`."""
    settings = [a for o in ["seed=0,1", *QUEUE] for a in ("-S", o)]
    timed(["dvc", "exp", "run", "--queue", *settings], repo)
    start = time.perf_counter()
    timed(["dvc", "queue", "start", "-j", str(jobs)], repo)  # returns when its workers exit
    while True:
        status = subprocess.run(
            ["dvc", "queue", "status"], cwd=repo, env=venv_env(), capture_output=True, text=True
        ).stdout
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(1)
    if status.count("Success") != 2:
        raise SystemExit(f"queued experiments failed:\n{status}")
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        repo = clone(tmp, "hydra")
        timed(["python", "-m", "pipelines.prepare", "data=fashion_mnist"], repo)
        sequential = multirun(repo, EPOCHS)
        parallel = multirun(repo, EPOCHS, *JOBLIB)
        one_thread = multirun(repo, EPOCHS, "trainer.num_threads=1")
        sized = multirun(repo, SHORT, *JOBLIB)
        oversubscribed = multirun(repo, SHORT, *JOBLIB, "trainer.num_threads=2")
        j1 = queued(clone(tmp, "queue-j1"), 1)
        j2 = queued(clone(tmp, "queue-j2"), 2)
    result = {
        "hydra": {
            "sequential_s": sequential,
            "joblib_2_workers_s": parallel,
            "speedup": sequential / parallel,
            "sequential_1_thread_s": one_thread,
            "parallel_efficiency": one_thread / parallel / 2,
            "torch_2_thread_speedup": one_thread / sequential,
            "short_2_workers_1_thread_s": sized,
            "short_2_workers_2_threads_s": oversubscribed,
            "oversubscription_slowdown": oversubscribed / sized,
        },
        "dvc_queue": {"j1_s": j1, "j2_s": j2, "speedup": j1 / j2},
    }
    print(
        table(
            [
                (
                    "Hydra multirun, sequential",
                    f"{sequential:.1f} s  (m,l x 2 seeds, Fashion-MNIST, 20 epochs)",
                ),
                (
                    "Hydra multirun, 2 workers",
                    f"{parallel:.1f} s  -> {sequential / parallel:.2f}x (target >= 1.7)",
                ),
                (
                    "Hydra multirun, sequential, 1 thread",
                    f"{one_thread:.1f} s  -> 2 workers scale {one_thread / parallel:.2f}x of 2; "
                    f"torch's 2 threads give {one_thread / sequential:.2f}x of 2",
                ),
                ("3 epochs, 2 workers x 1 thread", f"{sized:.1f} s  (scalelab's sizing)"),
                (
                    "3 epochs, 2 workers x 2 threads",
                    f"{oversubscribed:.1f} s  -> {oversubscribed / sized:.1f}x slower",
                ),
                ("DVC queue, 2 experiments -j 1", f"{j1:.1f} s"),
                ("DVC queue, 2 experiments -j 2", f"{j2:.1f} s  -> {j1 / j2:.2f}x"),
            ]
        )
    )
    print(f"-> {save('sweep_parallel', result)}")


if __name__ == "__main__":
    main()
