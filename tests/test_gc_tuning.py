"""A stage process holds cyclic collection off while it starts, then collects normally."""

from __future__ import annotations

import gc
import subprocess
import sys

from scalelab.gc_tuning import collects_after_startup, hold_collection, release_collection
from tests.conftest import ROOT


def test_collection_is_held_during_start_up_and_released_once_when_the_task_starts() -> None:
    assert gc.isenabled()
    try:
        hold_collection()
        assert not gc.isenabled()
        states = []
        task = collects_after_startup(lambda: states.append((gc.isenabled(), gc.get_freeze_count())))
        task()
        [(enabled, frozen)] = states
        assert enabled and frozen > 0, "start-up's heap is frozen, collection is on"
        # Nothing more is frozen afterwards. The count may still fall: another thread of this
        # process (MLflow's logging thread, left by an earlier test) can free frozen objects.
        task()  # a second job of a sequential multirun
        assert states[-1][0] and states[-1][1] <= frozen
        release_collection()
        assert gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_stage_module_collects_normally_by_the_time_its_task_runs() -> None:
    """What a joblib or SLURM worker does: import the stage module, then run its task."""
    probe = (
        "import gc, pipelines.evaluate as stage; "
        "print(gc.isenabled()); "
        "from scalelab.gc_tuning import release_collection; release_collection(); "
        "print(gc.isenabled(), gc.get_freeze_count() > 100000)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_every_stage_task_releases_collection_when_it_starts() -> None:
    probe = (
        "import importlib\n"
        "for name in ('prepare', 'train', 'evaluate', 'scaling'):\n"
        "    fn, chain = importlib.import_module(f'pipelines.{name}').main, []\n"
        "    while fn is not None:\n"
        "        chain.append(fn.__code__.co_qualname)\n"
        "        fn = getattr(fn, '__wrapped__', None)\n"
        "    print(name, 'collects_after_startup.<locals>.wrapper' in chain)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["prepare", "True", "train", "True", "evaluate", "True", "scaling", "True"]
