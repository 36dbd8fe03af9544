"""Spoken digits: the Free Spoken Digit Dataset's WAVs, found or downloaded, as log-mel spectrograms.

FSDD (Jackson et al., github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0): 6 speakers
x 10 digits x 50 takes, 8 kHz mono, named `{digit}_{speaker}_{take}.wav`. Its official split puts
takes 0-4 in the test set. The recordings resolve like the image datasets: `data.root`, then a
local copy (`data.system_dir`), then an earlier download in `data.download_dir/spoken_digits/`,
then the pinned release archive from `data.mirrors`, verified by the fingerprint below.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalelab.atomic import atomic_dir
from scalelab.config import AudioConfig, DataConfig, as_dict
from scalelab.data.sources import DIGIT_NAMES, RawDataset
from scalelab.errors import DataError, import_extra

NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
TEST_TAKES = range(5)  # the dataset's official test split
# SHA-256 of `sha256sum *.wav` run in recordings/ (C locale order): the 3,000 files of commit
# 26eb9aaf76e81b692f806f9140c2d2777410d7a1, the copy in ../shared/data/fsdd (see its README).
FINGERPRINT = "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"
FILES = 3000


@dataclass(frozen=True)
class Recording:
    """One utterance: where it is and what the file name says about it."""

    path: Path
    digit: int
    speaker: str
    take: int


def recordings(folder: Path) -> list[Recording]:
    """Every `{digit}_{speaker}_{take}.wav` in `folder`, in name order."""
    found = []
    for path in sorted(folder.glob("*.wav")):
        match = NAME.match(path.name)
        if match is None:
            raise DataError(
                f"{path}: not an FSDD file name ({{digit}}_{{speaker}}_{{take}}.wav); move it out"
            )
        found.append(Recording(path, int(match[1]), match[2], int(match[3])))
    return found


def fingerprint(folder: Path) -> str:
    """The dataset fingerprint of the WAVs in `folder` (same recipe as `FINGERPRINT`)."""
    lines = sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.glob("*.wav"))
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(lines, key=lambda x: x[0].encode()))
    return hashlib.sha256(listing.encode()).hexdigest()


def locate(cfg: DataConfig) -> tuple[Path, str]:
    """(folder of WAVs, its fingerprint): the first source that has them, downloading last.

    An explicit `data.root` is taken as the user's own recordings and only fingerprinted; the
    local copy and downloads must match the pinned release.
    """
    if cfg.root is not None:
        root = Path(cfg.root)
        if not any(root.glob("*.wav")):
            raise DataError(f"data.root {root} holds no .wav files; point it at FSDD's recordings/")
        return root, fingerprint(root)
    tried = []
    cache = Path(cfg.download_dir) / cfg.name
    system = (
        cfg.system_dir and Path(os.environ.get("DVC_ROOT", ".")) / cfg.system_dir
    )  # relative: to the project
    for label, folder in (("data.system_dir", system), ("download cache", cache)):
        if folder is None:
            continue
        if not Path(folder).is_dir():
            tried.append(f"{label} {folder} (missing)")
            continue
        actual = fingerprint(Path(folder))
        if actual == FINGERPRINT:
            return Path(folder), actual
        tried.append(f"{label} {folder} (fingerprint {actual[:12]}…, expected {FINGERPRINT[:12]}…)")
    for url in cfg.mirrors:
        try:
            return download(url, cache), FINGERPRINT
        except DataError as err:
            tried.append(f"{url}: {err}")
    raise DataError(
        f"spoken_digits not found; tried: {'; '.join(tried) or 'nothing'}. Fix: set data.root to "
        "FSDD's recordings/ folder"
    )


def download(url: str, dest: Path, timeout: float = 120.0) -> Path:
    """Fetch the release archive at `url`, keep its recordings/ WAVs in `dest` if they verify."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            archive = response.read()
    except urllib.error.HTTPError as err:
        raise DataError(f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DataError(str(getattr(err, "reason", err))) from None
    with atomic_dir(dest) as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
                for member in tar.getmembers():
                    name = Path(member.name)
                    if member.isfile() and name.parent.name == "recordings" and NAME.match(name.name):
                        (tmp / name.name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
        except tarfile.TarError as err:
            raise DataError(f"not a readable tar archive ({str(err).splitlines()[0]})") from None
        actual = fingerprint(tmp)
        if actual != FINGERPRINT:
            raise DataError(f"fingerprint mismatch ({actual[:12]}…, expected {FINGERPRINT[:12]}…)")
    return dest


def log_mel(path: Path, audio: AudioConfig) -> np.ndarray:
    """(n_mels, frames) log-mel spectrogram in dB of one WAV, padded with silence or cropped.

    librosa's mel filterbank and dB scaling on a NumPy STFT: the same numbers as
    `librosa.feature.melspectrogram`, without the numba compilation it pays on first use (~17 s
    in a fresh environment, ~0.7 s per later process, measured here).
    """
    librosa = import_extra("librosa", "audio")
    soundfile = import_extra("soundfile", "audio")
    try:
        signal, rate = soundfile.read(path, dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise DataError(f"{path}: unreadable WAV ({err})") from None
    if rate != audio.sample_rate or signal.ndim != 1:
        raise DataError(f"{path}: {rate} Hz, {signal.ndim} channel(s); expected {audio.sample_rate} Hz mono")
    length = audio.hop_length * (audio.frames - 1)  # samples that make exactly `frames` frames
    signal = np.pad(signal[:length], (0, max(0, length - len(signal))))
    window = np.hanning(audio.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa
    padded = np.pad(signal, audio.n_fft // 2, mode="constant")  # centred frames
    starts = np.arange(audio.frames) * audio.hop_length
    frames = np.stack([padded[s : s + audio.n_fft] * window for s in starts], axis=1)
    power = np.abs(np.fft.rfft(frames, axis=0)) ** 2  # (n_fft/2 + 1, frames)
    mel = librosa.filters.mel(sr=audio.sample_rate, n_fft=audio.n_fft, n_mels=audio.n_mels) @ power
    return librosa.power_to_db(mel, ref=1.0, top_db=None).astype(np.float32)


def spoken_digits(cfg: DataConfig) -> RawDataset:
    """FSDD as log-mel spectrograms (N, n_mels, frames) (`data=spoken_digits`), split by take:
    the official test takes, and validation takes drawn (seeded) from the rest, so that no
    utterance lands in two splits; each sample's speaker in `groups`."""
    folder, digest = locate(cfg)
    found = recordings(folder)
    x = np.stack([log_mel(r.path, cfg.audio) for r in found])
    y = np.array([r.digit for r in found], dtype=np.int64)
    takes = np.array([r.take for r in found])
    speakers = np.array([r.speaker for r in found])
    test = np.isin(takes, TEST_TAKES)
    train_takes = np.unique(takes[~test])
    n_val = int(np.ceil(cfg.val_fraction * len(train_takes)))
    if not test.any() or len(train_takes) - n_val < 1:
        raise DataError(
            f"{folder}: takes {sorted(set(takes.tolist()))} cannot give the official test split (takes 0-4) "
            "and train/validation takes; it needs recordings of takes 0-4 and at least two others"
        )
    val_takes = np.random.default_rng(cfg.split_seed).choice(train_takes, n_val, replace=False)
    val = np.isin(takes, val_takes) & ~test
    train = ~test & ~val
    return RawDataset(
        train_x=x[train],
        train_y=y[train],
        test_x=x[test],
        test_y=y[test],
        val_x=x[val],
        val_y=y[val],
        max_value=1,  # dB values, not pixels: nothing to divide by
        class_names=DIGIT_NAMES,
        origin=str(folder),
        inputs={"recordings": digest},
        split={
            "seed": cfg.split_seed,
            "by": "take",
            "test_takes": list(TEST_TAKES),
            "val_takes": sorted(val_takes.tolist()),
        },
        groups={
            name: {"speaker": speakers[mask].tolist()}
            for name, mask in (("train", train), ("val", val), ("test", test))
        },
        about={
            "features": {"kind": "log-mel dB (librosa.filters.mel, power_to_db)", **as_dict(cfg.audio)},
            "speakers": sorted(set(speakers.tolist())),
        },
    )
