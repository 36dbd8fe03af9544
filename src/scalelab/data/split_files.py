"""The on-disk format of a prepared dataset: `{train,val,test}.pt` tensors and `manifest.json`.

Each split file holds `{"x": (N, C, H, W), "y": int64 (N,)}` and optionally per-sample groups
such as `"speaker": [str]`; a text dataset's, `{"x": (N, context), "y": (N, context)}` token ids
(`scalelab.data.text`). `x` is stored as it came (uint8 pixels, float32 spectrograms);
the manifest says how to normalise it, and records counts, shapes, class names and the
SHA-256 of every input and output. `load_split` hands out normalised float32.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from scalelab.errors import DataError
from scalelab.readback import load_torch, read_json

SPLITS = ("train", "val", "test")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_split(
    folder: Path, split: str, x: torch.Tensor, y: torch.Tensor, groups: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """Save one split (with per-sample `groups`, e.g. speakers) and return its manifest entry."""
    path = folder / f"{split}.pt"
    torch.save({"x": x.contiguous(), "y": y.contiguous(), **(groups or {})}, path)
    return {"count": len(y), "x_shape": list(x.shape), "file": path.name, "sha256": file_sha256(path)}


def fingerprint(splits: dict[str, dict[str, Any]]) -> str:
    """One hash for the whole prepared dataset: the SHA-256 of its split files' hashes."""
    joined = "".join(f"{name}:{splits[name]['sha256']};" for name in sorted(splits))
    return hashlib.sha256(joined.encode()).hexdigest()


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a prepared dataset, or a `DataError` that says to run prepare."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path} is missing: run `dvc repro prepare` (or python -m pipelines.prepare)")
    return read_json(path, keys=("fingerprint", "input_shape", "num_classes", "normalisation"))


def load_split(folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split into memory: x as float32 normalised as the manifest says, y as int64."""
    path = Path(folder) / f"{split}.pt"
    normalisation = read_manifest(folder)["normalisation"]
    if "divide_by" not in normalisation or not path.is_file():
        raise DataError(
            f"{path} is missing or outdated: run `dvc repro prepare` (or python -m pipelines.prepare)"
        )
    data = load_torch(path, keys=("x", "y"))
    if normalisation.get("tokens"):  # a text dataset: token ids in, next token ids out
        return data["x"].long(), data["y"].long()
    x = data["x"].to(torch.float32) / normalisation["divide_by"]
    if normalisation["standardized"]:
        x = (x - normalisation["mean"]) / normalisation["std"]
    return x, data["y"]


def load_groups(folder: str | Path, split: str) -> dict[str, list[str]]:
    """Per-sample labels beyond the class (e.g. `{"speaker": [...]}`) of one split; often none."""
    data = load_torch(Path(folder) / f"{split}.pt", keys=("x", "y"))
    return {k: v for k, v in data.items() if k not in ("x", "y")}
