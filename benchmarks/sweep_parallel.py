"""Benchmark: a sweep run sequentially vs with 2 parallel workers, and what oversubscribing costs.

1. Hydra multirun over a Fashion-MNIST ladder whose rungs take >= 10 s each: the basic
   launcher (one job after another) vs the joblib launcher with 2 workers (one OpenMP thread
   each), and vs 2 workers that each insist on 2 threads (trainer.num_threads=2: 4 threads on
   2 cores, the oversubscription scalelab avoids).
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
LADDER = [
    "model.size=xs,s,m,l",
    "data=fashion_mnist",
    "trainer.max_epochs=6",
    "trainer.progress_bar=false",
    "sweep.bootstrap=50",
]
QUEUE = ["sweep.sizes=[xs,s,m]", "trainer.progress_bar=false", "sweep.bootstrap=50"]


def clone(tmp: Path, name: str) -> Path:
    repo = tmp / name
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, env=venv_env())
    return repo


def multirun(repo: Path, *extra: str) -> float:
    shutil.rmtree(repo / "models", ignore_errors=True)
    return timed(["python", "-m", "pipelines.train", "-m", *LADDER, *extra], repo)


def queued(repo: Path, jobs: int) -> float:
    settings = [a for o in ["seed=0,1", *QUEUE] for a in ("-S", o)]
    timed(["dvc", "exp", "run", "--queue", *settings], repo)
    start = time.perf_counter()
    timed(["dvc", "queue", "start", "-j", str(jobs)], repo)
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
        sequential = multirun(repo)
        parallel = multirun(repo, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
        oversubscribed = multirun(
            repo, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.num_threads=2"
        )
        j1 = queued(clone(tmp, "queue-j1"), 1)
        j2 = queued(clone(tmp, "queue-j2"), 2)
    result = {
        "hydra": {
            "sequential_s": sequential,
            "joblib_2_workers_s": parallel,
            "joblib_2_workers_oversubscribed_s": oversubscribed,
            "speedup": sequential / parallel,
        },
        "dvc_queue": {"j1_s": j1, "j2_s": j2, "speedup": j1 / j2},
    }
    print(
        table(
            [
                ("Hydra multirun, sequential", f"{sequential:.1f} s  (4 Fashion-MNIST rungs, 6 epochs)"),
                (
                    "Hydra multirun, 2 workers",
                    f"{parallel:.1f} s  -> {sequential / parallel:.2f}x (target >= 1.7)",
                ),
                (
                    "2 workers x 2 threads each",
                    f"{oversubscribed:.1f} s  (oversubscribed: what thread sizing avoids)",
                ),
                ("DVC queue, 2 experiments -j 1", f"{j1:.1f} s"),
                ("DVC queue, 2 experiments -j 2", f"{j2:.1f} s  -> {j1 / j2:.2f}x"),
            ]
        )
    )
    print(f"-> {save('sweep_parallel', result)}")


if __name__ == "__main__":
    main()
