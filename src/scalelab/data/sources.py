"""Where raw datasets come from: scikit-learn's digits, MNIST-1D's generator, or IDX files found
locally or downloaded; or a user's own loader.

A dataset is a loader `data._target_` names: a function of the `DataConfig` that returns a
`RawDataset`. The built-in ones are `digits`, `mnist1d` and `idx_files` here, and
`scalelab.data.speech.spoken_digits`; `prepare` splits, checks and stores whatever one returns.

IDX datasets resolve their files in a fixed order: `data.root`, then `data.system_dir` (e.g.
Debian's `dataset-fashion-mnist`), then an earlier download in `data.download_dir/<name>/`,
then each of `data.mirrors`. Checksums are SHA-256 of the *decompressed* files, so a copy
that was re-gzipped (as Debian's is) verifies the same as the mirrors' originals.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.atomic import atomic_path
from scalelab.config import DataConfig, resolve_target
from scalelab.data import idx
from scalelab.data.text import RawText
from scalelab.errors import ConfigError, DataError

DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class IdxSpec:
    """The four files of an MNIST-style dataset and what they must contain."""

    sha256: dict[str, str]  # file stem -> SHA-256 of its decompressed bytes
    class_names: tuple[str, ...]
    counts: tuple[int, int] = (60_000, 10_000)  # train, test
    image_shape: tuple[int, int] = (28, 28)


IDX_DATASETS: dict[str, IdxSpec] = {
    # Checksums agree with the publisher's MD5s of the .gz files (github.com/zalandoresearch/
    # fashion-mnist#get-the-data) and with Debian's re-gzipped copy.
    "fashion_mnist": IdxSpec(
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        class_names=FASHION_NAMES,
    ),
    "mnist": IdxSpec(
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        class_names=DIGIT_NAMES,
    ),
}


@dataclass(frozen=True)
class RawDataset:
    """Samples (N, H, W) or (N, 1, L), uint8 pixels or float32 signals, with int64 labels.

    `test_*` is None without an official test split (prepare holds out `data.test_fraction`);
    `val_*` is given only by a dataset whose split is fixed (then `split` says how it was made),
    otherwise prepare draws a stratified validation split. `groups` holds per-sample labels
    other than the class, per split (e.g. speakers); `about` adds entries to the manifest.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    max_value: int  # the brightest pixel value: 255 for IDX, 16 for digits, 1 for float signals
    class_names: tuple[str, ...]
    origin: str  # where the files were read from
    inputs: dict[str, str]  # input name -> SHA-256
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    split: dict[str, Any] | None = None
    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    about: dict[str, Any] = field(default_factory=dict)


def load(cfg: DataConfig) -> RawDataset | RawText:
    """The raw dataset (or text corpus) `cfg._target_`'s loader returns for `cfg`."""
    fix = "give the dotted path of a function that takes the data config and returns a RawDataset"
    loader = resolve_target(cfg._target_, "data._target_", fix)
    raw = loader(cfg)
    if not isinstance(raw, RawDataset | RawText):
        raise ConfigError(
            f"data._target_={cfg._target_!r} returned a {type(raw).__name__}; "
            "return a scalelab.data.sources.RawDataset (or a scalelab.data.text.RawText)"
        )
    return raw


def digits(cfg: DataConfig) -> RawDataset:
    """scikit-learn's 8x8 digits (`data=digits`): no official test split."""
    return _load_digits()


def mnist1d(cfg: DataConfig) -> RawDataset:
    """MNIST-1D's generator (`data=mnist1d`), `data.samples` of it."""
    return _generate_mnist1d(cfg.samples or MNIST1D_SAMPLES)


def idx_files(cfg: DataConfig) -> RawDataset:
    """An MNIST-style dataset of `IDX_DATASETS` (`data=fashion_mnist`, `data=mnist`), located
    (or downloaded) and verified."""
    if cfg.name not in IDX_DATASETS:
        raise ConfigError(
            f"data.name={cfg.name!r} is not an IDX dataset: use one of {', '.join(IDX_DATASETS)}"
        )
    spec = IDX_DATASETS[cfg.name]
    folder = locate(cfg, spec)
    arrays = {}
    for stem, digest in spec.sha256.items():
        path = _existing(folder, stem)
        assert path is not None  # locate() checked every file is there
        arrays[stem] = idx.read_idx(path, ndim=3 if "images" in stem else 1, expected_sha256=digest)
    return RawDataset(
        train_x=arrays["train-images-idx3-ubyte"],
        train_y=arrays["train-labels-idx1-ubyte"].astype(np.int64),
        test_x=arrays["t10k-images-idx3-ubyte"],
        test_y=arrays["t10k-labels-idx1-ubyte"].astype(np.int64),
        max_value=255,
        class_names=spec.class_names,
        origin=str(folder),
        inputs=dict(spec.sha256),
    )


def _load_digits() -> RawDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)  # (1797, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    return RawDataset(
        train_x=images,
        train_y=labels,
        test_x=None,
        test_y=None,
        max_value=16,
        class_names=DIGIT_NAMES,
        origin="sklearn.datasets.load_digits",
        inputs={"digits": idx.sha256(images.tobytes() + labels.tobytes())},
    )


MNIST1D_SAMPLES = 5000  # the package's (and the paper's) size: 4,000 train, 1,000 test


def _generate_mnist1d(samples: int) -> RawDataset:
    """MNIST-1D (Greydanus & Kobak 2024): ten 1-D templates, each sample padded, shifted,
    scaled, sheared and noised, 40 points long, generated offline by the `mnist1d` package with
    its default settings (seed 42) and its own train/test split (80/20).

    Signals are stored as float32 (N, 1, 40), standardised as the generator leaves them.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = samples
    state = np.random.get_state()  # the generator seeds numpy's global state: leave it as it was
    try:
        made = make_dataset(args)
    finally:
        np.random.set_state(state)
    x, test_x = (made[k].astype(np.float32)[:, None, :] for k in ("x", "x_test"))
    y, test_y = (made[k].astype(np.int64) for k in ("y", "y_test"))
    return RawDataset(
        train_x=x,
        train_y=y,
        test_x=test_x,
        test_y=test_y,
        max_value=1,  # already standardised: no pixel scale to divide by
        class_names=DIGIT_NAMES,
        origin=f"mnist1d.data.make_dataset(num_samples={samples}, seed={args.seed})",
        inputs={"mnist1d": idx.sha256(b"".join(a.tobytes() for a in (x, y, test_x, test_y)))},
    )


def _existing(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: Path, spec: IdxSpec) -> bool:
    return all(_existing(folder, stem) for stem in spec.sha256)


def locate(cfg: DataConfig, spec: IdxSpec) -> Path:
    """The first folder holding all of the dataset's files, downloading them as a last resort."""
    tried: list[str] = []
    cache = Path(cfg.download_dir) / cfg.name
    for label, folder in (
        ("data.root", cfg.root),
        ("data.system_dir", cfg.system_dir),
        ("download cache", cache),
    ):
        if folder is None:
            continue
        if _complete(Path(folder), spec):
            return Path(folder)
        tried.append(f"{label} {folder} (files missing)")
    if cfg.mirrors:
        try:
            return download(spec, cfg.mirrors, cache)
        except DataError as err:
            tried.append(str(err))
    else:
        tried.append("no data.mirrors to download from")
    raise DataError(
        f"{cfg.name} not found; tried: {'; '.join(tried)}. "
        "Fix: set data.root to a folder with the IDX .gz files"
        + (" or install Debian's dataset-fashion-mnist" if cfg.name == "fashion_mnist" else "")
    )


def download(spec: IdxSpec, mirrors: list[str], dest: Path, timeout: float = 60.0) -> Path:
    """Fetch every missing file from the first mirror that serves it intact; return `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for stem, digest in spec.sha256.items():
        if _existing(dest, stem):
            continue
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + f"/{stem}.gz"
            try:
                _fetch_verified(url, dest / f"{stem}.gz", digest, timeout)
                break
            except urllib.error.HTTPError as err:
                failures.append(f"{url}: HTTP {err.code} {err.reason}")
            except (urllib.error.URLError, OSError, DataError) as err:
                failures.append(f"{url}: {getattr(err, 'reason', err)}")
        else:
            raise DataError(f"download of {stem} failed ({'; '.join(failures)})")
    return dest


def _fetch_verified(url: str, path: Path, digest: str, timeout: float) -> None:
    with atomic_path(path) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as out:
            shutil.copyfileobj(response, out)
        actual = idx.sha256(idx.read_bytes(tmp))
        if actual != digest:
            raise DataError(f"checksum mismatch (SHA-256 {actual[:12]}…, expected {digest[:12]}…)")
