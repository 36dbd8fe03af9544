"""Ctrl-C and SIGTERM as a clean stop: noted when they arrive, acted on at a safe point.

Raising at the instant a signal arrives can cut an MLflow write in half and leave the SQLite
store locked; killing the process leaves the run RUNNING. So the first signal is only noted:
training stops after the current step (`StopOnSignal` in training/fit.py), and the run is
then ended KILLED with the reason. A second signal stops at once, unless it is `SWEEP_STOP`:
a stopped sweep passes that to its workers (scalelab/sweep_stop.py), and a worker that the
same stop also reached directly (`pkill`, Ctrl-C) must still stop at a step boundary.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_received: list[str] = []
_last: list[str] = []  # every signal noted in this process, kept after `graceful()` ends
EXIT_STATUS = 130  # what shells report for a process ended by Ctrl-C
SWEEP_STOP = signal.SIGUSR1  # "your sweep was stopped": what a sweep's command sends its workers
SIGNALS = (signal.SIGTERM, signal.SIGINT, SWEEP_STOP)


class Interrupted(KeyboardInterrupt):
    """Raised at a safe point after SIGINT or SIGTERM arrived."""


def received() -> str | None:
    """The name of the first signal that arrived inside `graceful()`, if any."""
    return _received[0] if _received else None


def check() -> None:
    """Raise `Interrupted` if a signal arrived: call where stopping is safe."""
    if _received:
        raise Interrupted(f"interrupted by {_received[0]}")


def _note(signum: int, _frame: Any) -> None:
    if _received and signum != SWEEP_STOP:  # the second Ctrl-C: the user means now
        raise KeyboardInterrupt
    if _received:
        return
    _received.append("its sweep's stop" if signum == SWEEP_STOP else signal.Signals(signum).name)
    _last.append(_received[0])


def last() -> str | None:
    """The last signal noted in this process, even after its `graceful()` block ended."""
    return _last[-1] if _last else None


@contextmanager
def graceful() -> Iterator[None]:
    """Within this block, SIGINT, SIGTERM and `SWEEP_STOP` are noted rather than acted on (main
    thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _note) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _received.clear()
