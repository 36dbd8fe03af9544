"""Finding raw data: explicit root, then the system copy, then the download cache, then mirrors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scalelab.config import DataConfig
from scalelab.data import sources
from scalelab.errors import DataError


def config(tmp_path: Path, **kw: object) -> DataConfig:
    kw.setdefault("download_dir", str(tmp_path / "raw"))
    return DataConfig(_target_="scalelab.data.sources.idx_files", name="mnist", **kw)  # type: ignore[arg-type]


def test_explicit_root_comes_first(tmp_path: Path, tiny_idx) -> None:
    root, spec = tiny_idx(tmp_path / "root")
    system, _ = tiny_idx(tmp_path / "system")
    cfg = config(tmp_path, root=str(root), system_dir=str(system), mirrors=["http://127.0.0.1:9/"])
    assert sources.locate(cfg, spec) == root


def test_system_copy_is_used_when_no_root_is_given(tmp_path: Path, tiny_idx) -> None:
    system, spec = tiny_idx(tmp_path / "system")
    cfg = config(tmp_path, root=str(tmp_path / "empty"), system_dir=str(system))
    assert sources.locate(cfg, spec) == system


def test_download_fetches_from_a_mirror_and_verifies(tmp_path: Path, tiny_idx, mirror) -> None:
    url, served, requests = mirror
    _, spec = tiny_idx(served)
    cfg = config(tmp_path, mirrors=[url])
    folder = sources.locate(cfg, spec)
    assert folder == tmp_path / "raw" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.gz" for s in spec.sha256)
    assert len(requests) == 4
    # A second call finds the download cache and asks no mirror.
    assert sources.locate(cfg, spec) == folder
    assert len(requests) == 4


def test_a_corrupt_mirror_is_skipped_for_the_next(tmp_path: Path, tiny_idx, mirror) -> None:
    url, served, _ = mirror
    _, spec = tiny_idx(served)
    bad = tmp_path / "bad"
    tiny_idx(bad, seed=1)  # same names, different bytes: every checksum fails
    with_bad = (bad.as_uri() + "/", url)
    folder = sources.download(spec, list(with_bad), tmp_path / "raw")
    assert all(sources._existing(folder, stem) for stem in spec.sha256)


def test_nothing_works_lists_everything_tried(tmp_path: Path, tiny_idx, mirror) -> None:
    url, _, _ = mirror  # serves nothing: 404 for every file
    _, spec = tiny_idx(tmp_path / "elsewhere")
    cfg = config(tmp_path, root=str(tmp_path / "nope"), system_dir=str(tmp_path / "none"), mirrors=[url])
    with pytest.raises(DataError) as err:
        sources.locate(cfg, spec)
    message = str(err.value)
    assert "\n" not in message
    for part in ("data.root", "data.system_dir", "download cache", "404", "Fix: set data.root"):
        assert part in message
    assert not any((tmp_path / "raw" / "mnist").glob("*.gz")), "no partial download left behind"


def test_load_checks_checksums_of_whatever_folder_it_found(tmp_path: Path, tiny_idx, monkeypatch) -> None:
    root, spec = tiny_idx(tmp_path / "root")
    monkeypatch.setitem(sources.IDX_DATASETS, "mnist", spec)
    raw = sources.load(config(tmp_path, root=str(root)))
    assert raw.train_x.shape == (40, 6, 6) and raw.test_x is not None
    assert raw.train_y.dtype == np.int64 and raw.max_value == 255
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes((root / "train-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: checksum mismatch"):
        sources.load(config(tmp_path, root=str(root)))


def test_digits_are_embedded_and_offline() -> None:
    raw = sources.load(DataConfig(name="digits", test_fraction=0.2))
    assert raw.train_x.shape == (1797, 8, 8) and raw.test_x is None
    assert raw.train_x.max() == 16 == raw.max_value
