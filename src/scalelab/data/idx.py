"""Read IDX files (the MNIST family's format), gzipped or not, checking header and checksum.

IDX is a 4-byte magic (0, 0, dtype code, number of dims), one big-endian uint32 per dim, then
the raw array (http://yann.lecun.com/exdb/mnist/). Written by hand: it is ~30 lines of NumPy,
and the packages that parse it (idx2numpy, python-mnist) add a dependency without adding checks.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from scalelab.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: Path) -> bytes:
    """The decompressed content of an IDX file, gzipped (recognised by its magic) or raw."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({err}); delete it and fetch it again") from None


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def parse(data: bytes, *, ndim: int, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, checking the magic number, dims and payload length."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{source}: not an IDX file (magic {data[:4].hex() or 'missing'})")
    if data[3] != ndim:
        raise DataError(f"{source}: has {data[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{source}: header says shape {shape} ({expected} bytes) "
            f"but the file holds {len(data) - header} bytes: truncated or corrupted"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def read_idx(path: Path, *, ndim: int, expected_sha256: str | None = None) -> np.ndarray:
    """Read and check one IDX file; `expected_sha256` is of the decompressed bytes."""
    data = read_bytes(path)
    if expected_sha256 is not None and (actual := sha256(data)) != expected_sha256:
        raise DataError(
            f"{path}: checksum mismatch (SHA-256 {actual[:12]}…, expected "
            f"{expected_sha256[:12]}…): the file is corrupted or not the official release; "
            "delete it and fetch it again"
        )
    return parse(data, ndim=ndim, source=str(path))
