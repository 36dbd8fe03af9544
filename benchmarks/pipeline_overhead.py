"""Benchmark: what the pipeline costs around the training itself.

From a fresh `git clone` of this repository (committed state; the .venv is reused):
the whole default `dvc repro` (MNIST-1D, 6 rungs x 3 seeds and the fit), a no-op `dvc repro`
right after, and the time from launching `python -m pipelines.train` to its first
optimiser step.

    python -m benchmarks.pipeline_overhead     (or: make bench)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import save, table, timed, venv_env

ROOT = Path(__file__).resolve().parents[1]


def first_step_seconds(repo: Path) -> float:
    """Seconds from launching a one-rung training to its first optimiser step."""
    start = time.time()
    timed(
        [
            "python",
            "-m",
            "pipelines.train",
            "model.size=xs",
            "seed=7",
            "trainer.max_epochs=1",
            "trainer.progress_bar=false",
        ],
        repo,
    )
    run = json.loads((repo / "reports/train/xs/s7/run.json").read_text())
    return run["first_step_at"] - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, env=venv_env())
        full = timed(["dvc", "repro"], repo)
        noop = min(timed(["dvc", "repro"], repo) for _ in range(3))
        first = min(first_step_seconds(repo) for _ in range(2))
    result = {"default_repro_seconds": full, "noop_repro_seconds": noop, "first_step_seconds": first}
    print(
        table(
            [
                ("default dvc repro (clean clone)", f"{full:.1f} s  (target <= 120)"),
                ("no-op dvc repro", f"{noop:.2f} s  (target <= 1.5)"),
                ("command start -> first step", f"{first:.2f} s  (target <= 3)"),
            ]
        )
    )
    print(f"-> {save('pipeline_overhead', result)}")


if __name__ == "__main__":
    main()
