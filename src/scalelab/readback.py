"""The one place where the lab reads back files it wrote, checked.

A file that is empty, truncated, unreadable or not the shape the lab writes becomes an
`UnreadableFile`: one line naming the file, what is wrong with it, and the command that
rebuilds it (stages turn it into exit status 2, nothing overwritten). A file that is simply
missing raises `FileNotFoundError` as before: callers decide what absence means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scalelab.errors import DataError


class UnreadableFile(DataError):
    """A file the lab wrote cannot be read back as what it should be."""


def rebuild_hint(path: Path) -> str:
    """The command that rebuilds `path`, from where it lies in the project."""
    parts = path.as_posix()
    # a run's folder: <size>/s<seed>/, or <size>/d<samples>/s<seed>/ on a data axis (paths.cell)
    if match := re.search(r"(?:^|/)models/([^/]+)/(?:d(\d+)/)?s(\d+)/", parts):
        size, samples, seed = match.groups()
        subset = f" data.train_samples={samples}" if samples else ""
        again = f"python -m pipelines.train model.size={size}{subset} seed={seed}"
        return f"retrain it: dvc repro -s -f train@{size} (or {again})"
    if match := re.search(r"(?:^|/)reports/train/([^/]+)/(?:d\d+/)?s\d+/", parts):
        return f"retrain that rung: dvc repro -s -f train@{match.group(1)}"
    if match := re.search(r"(?:^|/)reports/runs/([^/]+)/(?:d\d+/)?s\d+/", parts):
        return f"evaluate that rung again: dvc repro -s -f evaluate@{match.group(1)}"
    # a variant's run of a multirun over other settings: <variant>/<cell> (scalelab.variants)
    run_folder = r"(?:^|/)(?:models|reports/train|reports/runs)/([^/]+)/([^/]+)/(?:d\d+/)?s(\d+)/"
    if match := re.search(run_folder, parts):
        variant, size, seed = match.groups()
        again = f"variant {variant}, model.size={size} seed={seed}"
        return f"retrain it: run the multirun that trained it again ({again})"
    if re.search(r"(?:^|/)data/prepared/", parts):
        return "prepare the data again: dvc repro -s -f prepare (or python -m pipelines.prepare)"
    if re.search(r"(?:^|/)checkpoints/", parts):
        return f"delete {path.parent} to train that run from the start"
    return "delete it and run the stage that writes it again"


def read_json(path: str | Path, keys: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON object the lab wrote, holding at least `keys`."""
    path = Path(path)
    text = path.read_text(errors="replace")
    if not text.strip():
        raise _unreadable(path, "it is empty")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise _unreadable(path, f"not JSON ({err.msg} at line {err.lineno})") from None
    return checked(path, value, keys)


def load_torch(path: str | Path, keys: Iterable[str] = (), **load: Any) -> dict[str, Any]:
    """A torch file the lab wrote (`torch.load(..., weights_only=True)`), holding at least `keys`."""
    import torch

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise _unreadable(path, "it is empty")
    try:
        value = torch.load(path, weights_only=True, **{"map_location": "cpu", **load})
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises OSError, RuntimeError, EOFError, UnpicklingError, ...
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise _unreadable(path, f"truncated or not a torch file: {first}") from None
    return checked(path, value, keys)


def checked(path: Path, value: Any, keys: Iterable[str]) -> dict[str, Any]:
    """`value`, read from `path`, if it is a mapping holding `keys`; else `UnreadableFile`."""
    if not isinstance(value, dict):
        raise _unreadable(path, f"a {type(value).__name__} where the lab writes a mapping")
    if missing := [k for k in keys if k not in value]:
        raise _unreadable(path, f"no {', '.join(missing)}: not the file this version writes")
    return value


def _unreadable(path: Path, problem: str) -> UnreadableFile:
    return UnreadableFile(f"{path} is unreadable: {problem}; {rebuild_hint(path)}")
