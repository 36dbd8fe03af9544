"""The IDX reader: parses what the format says, and refuses anything else in one line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from scalelab.data import idx
from scalelab.errors import DataError
from tests.conftest import idx_bytes, write_idx


def test_reads_gzipped_and_raw_files_alike(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    gz = write_idx(tmp_path / "a.gz", images)
    raw = write_idx(tmp_path / "a", images, gz=False)
    np.testing.assert_array_equal(idx.read_idx(gz, ndim=3), images)
    np.testing.assert_array_equal(idx.read_idx(raw, ndim=3), images)


def test_checksum_is_of_the_decompressed_bytes_so_regzipped_copies_verify(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    digest = idx.sha256(idx_bytes(labels))
    once = write_idx(tmp_path / "once.gz", labels)
    again = tmp_path / "again.gz"
    again.write_bytes(gzip.compress(idx_bytes(labels), compresslevel=1, mtime=12345))
    assert once.read_bytes() != again.read_bytes()
    for path in (once, again):
        np.testing.assert_array_equal(idx.read_idx(path, ndim=1, expected_sha256=digest), labels)


def test_checksum_mismatch_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError, match=r"labels\.gz: checksum mismatch"):
        idx.read_idx(path, ndim=1, expected_sha256="0" * 64)


def test_truncated_archive_is_a_clear_error(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images.gz", np.ones((10, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match=r"images\.gz: cannot read"):
        idx.read_idx(path, ndim=3)


def test_truncated_payload_is_a_clear_error(tmp_path: Path) -> None:
    data = idx_bytes(np.ones((10, 4, 4), dtype=np.uint8))[:-7]
    path = tmp_path / "short"
    path.write_bytes(data)
    with pytest.raises(DataError, match=r"shape \(10, 4, 4\).*truncated or corrupted"):
        idx.read_idx(path, ndim=3)


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(DataError, match="not an IDX file"):
        idx.read_idx(path, ndim=3)


def test_wrong_number_of_dimensions_is_refused(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError, match="has 1 dimensions, expected 3"):
        idx.read_idx(path, ndim=3)
