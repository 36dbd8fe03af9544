"""Benchmark: what MLflow costs a training run around its epochs, buffered or not.

Each setting runs in its own process (MLflow reads the variable in its logging thread): a run is
opened, `EPOCHS` epochs are logged in the background as training logs them (`RunHistory`), the
summary is logged and the run ends. `MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=0` is MLflow's
default queue, whose thread blocks in a 1 s read that ending the run waits out; 1 is the lab's.

    python -m benchmarks.tracking_overhead     (or: make bench)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import save, table, venv_env

RUNS, EPOCHS = 8, 60  # a seed-MLP rung: ~60 epochs of ~20 ms


def one_setting(uri: str) -> float:
    """Seconds per run: open, log EPOCHS epochs in the background (20 ms apart), close."""
    import mlflow

    from scalelab.tracking.history import RunHistory

    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench")
    start = time.perf_counter()
    for _ in range(RUNS):
        with mlflow.start_run(experiment_id=experiment) as run:
            history = RunHistory(uri, run.info.run_id)
            for epoch in range(EPOCHS):
                time.sleep(0.02)  # the epoch's training
                history.log({epoch: {"train/loss": 1 / (epoch + 1), "val/loss": 1 / (epoch + 2)}}, wait=False)
            history.log_once({"train/seconds": 1.0}, step=EPOCHS - 1)
    return (time.perf_counter() - start) / RUNS - EPOCHS * 0.02


def measure(buffering: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = venv_env(MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=buffering)
        code = f"from benchmarks.tracking_overhead import one_setting; print(one_setting('sqlite:///{tmp}/m.db'))"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr)
        return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    unbuffered, buffered = measure("0"), measure("1")
    result = {"runs": RUNS, "epochs": EPOCHS, "unbuffered_seconds_per_run": unbuffered,
              "buffered_seconds_per_run": buffered, "ratio": buffered / unbuffered}  # fmt: skip
    print(
        table(
            [
                ("MLflow's default queue", f"{unbuffered:.3f} s a run beyond its epochs"),
                ("buffered (the lab's)", f"{buffered:.3f} s a run  (ratio {buffered / unbuffered:.2f})"),
            ]
        )
    )
    print(f"-> {save('tracking_overhead', result)}")


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    main()
