"""A stopped sweep stops all of it: SIGTERM or SIGINT to a multirun's command reaches every job.

Hydra's joblib launcher runs jobs in worker processes that a signal to the command does not
reach: killed, the command leaves them training, orphaned. So while a multirun runs, the
command passes the stop to its workers as `interrupts.SWEEP_STOP` (each training then stops at
a step boundary, saves its checkpoint and ends its run KILLED; a worker ignores it between
trainings) and leaves a stop mark in the sweep's folder,
which makes every job not yet started end at once. A job interrupted in the command's own
process (the basic launcher) leaves the mark itself. At the end, the sweep fits nothing: its
parent run ends KILLED and the command exits 130 naming the runs it stopped; running the same
command again resumes them from their checkpoints.

A SLURM job that is cancelled or runs out of time is one failed job, not a stopped sweep: the
others are still fitted (hydra_plugins/scalelab_slurm).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalelab import interrupts

COMMAND_PID_ENV = "SCALELAB_SWEEP_COMMAND_PID"


def mark_path(sweep_dir: str | Path) -> Path | None:
    """`<sweep dir>/.stopped-<command pid>`: present once the sweep was told to stop; None
    outside a sweep whose command forwards signals (a single run, a SLURM job)."""
    pid = os.environ.get(COMMAND_PID_ENV)
    return Path(sweep_dir) / f".stopped-{pid}" if pid else None


def mark(sweep_dir: str | Path, signal_name: str) -> None:
    if path := mark_path(sweep_dir):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(signal_name)


def stopped(sweep_dir: str | Path) -> str | None:
    """The signal that stopped the sweep, or None while it runs on."""
    path = mark_path(sweep_dir)
    try:
        return (path.read_text().strip() or "a signal") if path else None
    except FileNotFoundError:
        return None


def in_command_process() -> bool:
    """Whether this job runs in the multirun's own command (basic launcher), not a worker."""
    return os.environ.get(COMMAND_PID_ENV) == str(os.getpid())


def _workers() -> list[Any]:
    """The command's worker processes (loky's), not its resource trackers."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def worker_started() -> None:
    """In a worker process: between trainings, a stop passed on by the command is ignored (the
    stop mark ends the jobs not yet started); `interrupts.graceful` notes it during one."""
    if not in_command_process():
        signal.signal(interrupts.SWEEP_STOP, signal.SIG_IGN)


def forward_signals(sweep_dir: str | Path) -> Callable[[], None]:
    """Until the returned function is called, a first SIGTERM or SIGINT marks the sweep stopped
    and is passed to every worker as `interrupts.SWEEP_STOP`; a second one stops the command at
    once."""
    os.environ[COMMAND_PID_ENV] = str(os.getpid())

    def forward(signum: int, _frame: Any) -> None:
        import psutil

        if stopped(sweep_dir):
            raise KeyboardInterrupt
        mark(sweep_dir, signal.Signals(signum).name)
        for worker in _workers():
            try:
                worker.send_signal(interrupts.SWEEP_STOP)
            except psutil.Error:
                continue

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if path := mark_path(sweep_dir):
            path.unlink(missing_ok=True)
        os.environ.pop(COMMAND_PID_ENV, None)

    return restore
