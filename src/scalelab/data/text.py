"""Text corpora for character-level language models: found and verified, tokenised by a vocabulary
built from the training span, and cut into windows of `data.context` characters.

`data=shakespeare` is Tiny Shakespeare (1,115,394 characters), found in `data.root`, then the
local copy `data.system_dir`, then an earlier download, then `data.mirrors`, each checked
against its SHA-256. `data=text data.root=PATH` takes any UTF-8 text file as a corpus.

The corpus is split into contiguous spans (train first, then validation, then test: by default
90/5/5), so no window of one split overlaps another's text. Each split is stored as windows
`x` (N, context) of token ids and `y` the same windows shifted by one character (the next-token
targets), through the same split files as every dataset (`scalelab.data.split_files`).
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scalelab import atomic, paths
from scalelab.config import DataConfig
from scalelab.data import idx, split_files
from scalelab.errors import ConfigError, DataError

SHAKESPEARE_FILE = "input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


@dataclass(frozen=True)
class RawText:
    """A whole corpus as text, where it was read from and the SHA-256 of its bytes."""

    text: str
    origin: str
    sha256: str


class CharVocab:
    """Characters <-> token ids, in the order of `chars` (sorted, as built from a text)."""

    def __init__(self, chars: str | list[str]) -> None:
        self.chars = "".join(chars)
        if len(set(self.chars)) != len(self.chars) or not self.chars:
            raise DataError(f"a vocabulary needs distinct characters, got {self.chars!r}")
        self.ids = {char: i for i, char in enumerate(self.chars)}

    @classmethod
    def of(cls, text: str) -> CharVocab:
        """The vocabulary of the characters `text` holds."""
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str, what: str = "the text") -> np.ndarray:
        """Token ids of `text` (uint8, or int32 for more than 256 characters); a `DataError`
        naming the first characters the vocabulary does not hold."""
        unknown = sorted(set(text) - self.ids.keys())
        if unknown:
            first = min(text.index(char) for char in unknown)
            shown = ", ".join(repr(char) for char in unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise DataError(
                f"{what} holds {len(unknown)} character(s) the vocabulary does not ({shown}; first at "
                f"character {first:,}); the vocabulary is built from the training split: use text "
                f"made of its {len(self)} characters"
            )
        dtype = np.uint8 if len(self) <= 256 else np.int32
        lookup = np.zeros(max(map(ord, self.chars)) + 1, dtype=dtype)
        lookup[[ord(char) for char in self.chars]] = np.arange(len(self), dtype=dtype)
        return lookup[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]

    def decode(self, ids: Any) -> str:
        """The text of token ids."""
        return "".join(self.chars[int(i)] for i in ids)


def vocab_of(manifest: dict[str, Any]) -> CharVocab:
    """The vocabulary a prepared text dataset's manifest stores."""
    return CharVocab(manifest["vocab"])


def shakespeare(cfg: DataConfig) -> RawText:
    """Tiny Shakespeare (`data=shakespeare`), located or downloaded, and verified."""
    tried: list[str] = []
    cache = Path(cfg.download_dir) / cfg.name
    for label, where in (
        ("data.root", cfg.root),
        ("data.system_dir", cfg.system_dir),
        ("download cache", cache),
    ):
        if where is None:
            continue
        path = Path(where)
        path = path / SHAKESPEARE_FILE if path.is_dir() else path
        if path.is_file():
            return _verified(path, SHAKESPEARE_SHA256)
        tried.append(f"{label} {path} (missing)")
    failures = []
    for url in cfg.mirrors:
        try:
            return _verified(_fetch(url, cache / SHAKESPEARE_FILE, SHAKESPEARE_SHA256), SHAKESPEARE_SHA256)
        except urllib.error.HTTPError as err:
            failures.append(f"{url}: HTTP {err.code} {err.reason}")
        except (urllib.error.URLError, OSError, DataError) as err:
            failures.append(f"{url}: {getattr(err, 'reason', err)}")
    tried.append(f"download ({'; '.join(failures)})" if failures else "no data.mirrors to download from")
    raise DataError(
        f"{cfg.name} not found; tried: {'; '.join(tried)}. "
        f"Fix: set data.root to Tiny Shakespeare's {SHAKESPEARE_FILE} (or the folder holding it)"
    )


def text_file(cfg: DataConfig) -> RawText:
    """Any UTF-8 text file as a corpus (`data=text data.root=PATH`)."""
    if cfg.root is None:
        raise ConfigError("data=text needs its corpus: set data.root=PATH to a UTF-8 text file")
    path = Path(cfg.root)
    if not path.is_file():
        raise DataError(f"data.root={cfg.root}: no such file; point it at a UTF-8 text file")
    return _verified(path, None)


def _verified(path: Path, sha256: str | None) -> RawText:
    """The text of `path`, checked against `sha256` when one is expected."""
    data = path.read_bytes()
    actual = idx.sha256(data)
    if sha256 is not None and actual != sha256:
        raise DataError(
            f"{path}: checksum mismatch (SHA-256 {actual[:12]}…, expected {sha256[:12]}…); "
            f"the file is not the expected corpus: replace it, or delete it to download it again"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text (byte {err.start:,}: {err.reason}); convert it first"
        ) from None
    return RawText(text=text, origin=str(path), sha256=actual)


def _fetch(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Download `url` to `dest`, kept only if its SHA-256 is `sha256`."""
    with atomic.atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as out:
            shutil.copyfileobj(response, out)
        _verified(tmp, sha256)  # before the rename: a bad download never lands in the cache
    return dest


def spans(length: int, val_fraction: float, test_fraction: float) -> dict[str, tuple[int, int]]:
    """Contiguous [start, end) character spans: train, then validation, then test."""
    val, test = round(length * val_fraction), round(length * test_fraction)
    train = length - val - test
    return {"train": (0, train), "val": (train, train + val), "test": (train + val, length)}


def windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of `context` tokens (N, context) and their next-token targets:
    the same windows one token later. The tail shorter than a window is left out."""
    n = (len(ids) - 1) // context
    return ids[: n * context].reshape(n, context), ids[1 : n * context + 1].reshape(n, context)


def prepare_text(cfg: DataConfig, raw: RawText) -> Path:
    """Split, tokenise and window `raw`; write it as a prepared dataset; return its folder."""
    test_fraction = 0.05 if cfg.test_fraction is None else cfg.test_fraction
    if not (0 < cfg.val_fraction < 1 and 0 < test_fraction < 1 and cfg.val_fraction + test_fraction < 1):
        raise ConfigError(
            f"data.val_fraction={cfg.val_fraction} and data.test_fraction={test_fraction} must each be "
            f"in (0, 1) and leave text to train on; e.g. 0.05 and 0.05"
        )
    bounds = spans(len(raw.text), cfg.val_fraction, test_fraction)
    vocab = CharVocab.of(raw.text[slice(*bounds["train"])])
    parts = {}
    for split, (start, end) in bounds.items():
        ids = vocab.encode(raw.text[start:end], f"the {split} split of {raw.origin}")
        x, y = windows(ids, cfg.context)
        if len(x) == 0:
            raise DataError(
                f"the {split} split of {raw.origin} has {end - start:,} characters, fewer than one window "
                f"of data.context={cfg.context}: use a longer text or a shorter context"
            )
        parts[split] = (x, y)
    out = paths.prepared_dir(cfg.name)
    with atomic.atomic_dir(out) as tmp:
        import torch

        written = {
            split: split_files.write_split(tmp, split, torch.from_numpy(x), torch.from_numpy(y))
            for split, (x, y) in parts.items()
        }
        manifest: dict[str, Any] = {
            "dataset": cfg.name,
            "origin": raw.origin,
            "inputs": {Path(raw.origin).name: raw.sha256},
            "kind": "text",
            "vocab": list(vocab.chars),
            "class_names": list(vocab.chars),  # a next-token prediction is a class of its own
            "split": {"by": "contiguous character spans", "spans": {k: list(v) for k, v in bounds.items()}},
            "splits": written,
            "tokens": {split: int(x.size) for split, (x, _) in parts.items()},
            "input_shape": [cfg.context],  # (context,) token ids
            "num_classes": len(vocab),
            "normalisation": {"tokens": True, "divide_by": 1, "standardized": False, "mean": 0.0, "std": 1.0},
            "fingerprint": split_files.fingerprint(written),
        }
        atomic.write_json(tmp / "manifest.json", manifest)
    return out
