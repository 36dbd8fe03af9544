"""A pipeline stage's process: quick to start and quick to end.

Python's cyclic garbage collector is the cost at both ends. Importing torch, Lightning and
MLflow builds ~1M long-lived objects, and every full collection on the way walks all of them
(~0.9 s of a 3.9 s start-up here); at exit the interpreter walks them once more (~1-1.5 s).
None of them is garbage. So a stage module holds collection off while it imports
(`hold_collection`, its first statement), the task freezes what start-up built and collects
normally from then on (`collects_after_startup`), and the process freezes its heap again as it
ends (`run_then_exit_quickly`).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any, TypeVar

Task = TypeVar("Task", bound=Callable[..., Any])


def hold_collection() -> None:
    """No cyclic collection until `release_collection`: call before a stage's heavy imports."""
    gc.disable()


def release_collection() -> None:
    """Start-up is over: move everything it built out of the collector's sight, collect again.

    Once per process: only while collection is held (a sequential multirun calls this per job;
    freezing a later job's heap would hide an earlier job's garbage from the collector).
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def collects_after_startup(task: Task) -> Task:
    """Release collection when the stage's task starts, wherever it runs: in the command's own
    process, or in a joblib or SLURM worker that imported the stage module to unpickle it."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        release_collection()
        return task(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def run_then_exit_quickly(main: Callable[[], Any]) -> None:
    """Run a stage's `main`, then freeze the heap so the interpreter's final collection skips it.

    Everything that matters has happened by then: scalelab's files are written and closed
    (`atomic`), MLflow requests are committed, and atexit handlers (MLflow's async-logging
    flush, temp folders) and thread joins still run. Objects are still freed by reference
    counting; only cycles are left for the OS to reclaim with the process.
    """
    try:
        main()
    finally:
        gc.freeze()
