"""Spoken digits: found or downloaded and verified, turned into log-mel spectrograms, split by take."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from scalelab.config import AudioConfig, DataConfig, input_shape
from scalelab.data import speech
from scalelab.data.prepare import prepare
from scalelab.data.split_files import load_groups, load_split
from scalelab.errors import DataError, MissingExtra


def subset(fsdd: Path, folder: Path, speakers: tuple[str, ...], takes: tuple[int, ...]) -> Path:
    """Copy the recordings of `speakers` x every digit x `takes` into `folder`."""
    folder.mkdir(parents=True)
    for digit in range(10):
        for speaker in speakers:
            for take in takes:
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copy2(fsdd / name, folder / name)
    return folder


def test_the_local_copy_matches_the_pinned_fingerprint(fsdd: Path) -> None:
    assert len(speech.recordings(fsdd)) == speech.FILES
    assert speech.fingerprint(fsdd) == speech.FINGERPRINT


def test_features_are_librosas_log_mel_spectrogram(fsdd: Path) -> None:
    import librosa

    audio = AudioConfig()
    ours = speech.log_mel(fsdd / "3_theo_7.wav", audio)
    signal, rate = soundfile.read(fsdd / "3_theo_7.wav", dtype="float32")
    length = audio.hop_length * (audio.frames - 1)
    signal = np.pad(signal[:length], (0, max(0, length - len(signal))))
    mel = librosa.feature.melspectrogram(
        y=signal, sr=rate, n_fft=audio.n_fft, hop_length=audio.hop_length, n_mels=audio.n_mels,
        pad_mode="constant",
    )  # fmt: skip
    assert (
        ours.shape
        == (audio.n_mels, audio.frames)
        == tuple(
            input_shape(DataConfig(_target_="scalelab.data.speech.spoken_digits", name="spoken_digits"))[1:]
        )
    )
    np.testing.assert_allclose(ours, librosa.power_to_db(mel, ref=1.0, top_db=None), atol=1e-3)


def test_prepare_keeps_the_official_test_takes_and_splits_validation_by_take(
    fsdd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = subset(fsdd, tmp_path / "wavs", ("jackson", "theo"), (0, 3, 5, 6, 7, 8))
    monkeypatch.chdir(tmp_path)
    out = prepare(
        DataConfig(
            _target_="scalelab.data.speech.spoken_digits",
            name="spoken_digits",
            root=str(root),
            val_fraction=0.25,
            standardize=True,
        )
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input_shape"] == [1, 32, 64]
    assert manifest["features"]["n_mels"] == 32 and manifest["features"]["hop_length"] == 128
    assert manifest["split"]["by"] == "take" and len(manifest["split"]["val_takes"]) == 1
    counts = {split: entry["count"] for split, entry in manifest["splits"].items()}
    assert counts == {"test": 40, "val": 20, "train": 60}  # 2 speakers x 10 digits x takes
    assert manifest["speakers"] == ["jackson", "theo"]
    x, y = load_split(out, "train")
    assert x.shape == (60, 1, 32, 64) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3, "standardised on train"
    assert sorted(y.tolist()) == sorted(list(range(10)) * 6)
    speakers = load_groups(out, "test")["speaker"]
    assert sorted(set(speakers)) == ["jackson", "theo"] and len(speakers) == 40


def test_refuses_files_that_are_not_fsdd_recordings(fsdd: Path, tmp_path: Path) -> None:
    root = subset(fsdd, tmp_path / "wavs", ("theo",), (0, 5, 6))
    soundfile.write(root / "4_theo_9.wav", np.zeros(4000, dtype=np.float32), 16000)
    with pytest.raises(DataError, match=r"4_theo_9.wav: 16000 Hz, 1 channel\(s\); expected 8000 Hz mono"):
        speech.log_mel(root / "4_theo_9.wav", AudioConfig())
    (root / "4_theo_9.wav").write_bytes(b"RIFF not really")
    with pytest.raises(DataError, match=r"4_theo_9.wav: unreadable WAV"):
        speech.log_mel(root / "4_theo_9.wav", AudioConfig())
    (root / "notes.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"notes.wav: not an FSDD file name"):
        speech.recordings(root)


def test_no_test_takes_is_a_clear_error(fsdd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = subset(fsdd, tmp_path / "wavs", ("theo",), (5, 6, 7))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="takes 0-4"):
        prepare(
            DataConfig(_target_="scalelab.data.speech.spoken_digits", name="spoken_digits", root=str(root))
        )
    assert not (tmp_path / "data/prepared/spoken_digits").exists(), "nothing half-written"


def release_archive(fsdd: Path, corrupt: bool = False) -> bytes:
    """A tar.gz laid out like the GitHub release archive, built from the local copy."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for i, path in enumerate(sorted(fsdd.glob("*.wav"))):
            data = path.read_bytes()
            if corrupt and i == 1234:
                data = data[:-2] + b"\x00\x01"
            info = tarfile.TarInfo(f"free-spoken-digit-dataset-26eb9aa/recordings/{path.name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_download_fetches_the_release_and_verifies_its_fingerprint(
    fsdd: Path, tmp_path: Path, mirror
) -> None:
    base, folder, requests = mirror
    (folder / "good.tar.gz").write_bytes(release_archive(fsdd))
    (folder / "bad.tar.gz").write_bytes(release_archive(fsdd, corrupt=True))
    cfg = DataConfig(
        name="spoken_digits",
        system_dir=str(tmp_path / "nowhere"),
        download_dir=str(tmp_path / "raw"),
        mirrors=[f"{base}missing.tar.gz", f"{base}bad.tar.gz", f"{base}good.tar.gz"],
    )
    found, fingerprint = speech.locate(cfg)
    assert found == tmp_path / "raw/spoken_digits" and fingerprint == speech.FINGERPRINT
    assert len(list(found.glob("*.wav"))) == speech.FILES
    fetched = list(dict.fromkeys(requests))  # a 404 is logged twice
    assert fetched == ["/missing.tar.gz", "/bad.tar.gz", "/good.tar.gz"]
    assert speech.locate(cfg) == (found, speech.FINGERPRINT), "the verified download is reused"
    assert list(dict.fromkeys(requests)) == fetched, "without fetching again"


def test_nothing_found_lists_everything_tried(tmp_path: Path, mirror) -> None:
    base, folder, _ = mirror
    (folder / "bad.tar.gz").write_bytes(b"not a tarball")
    cfg = DataConfig(
        name="spoken_digits",
        system_dir=str(tmp_path / "nowhere"),
        download_dir=str(tmp_path / "raw"),
        mirrors=[f"{base}bad.tar.gz"],
    )
    with pytest.raises(DataError) as err:
        speech.locate(cfg)
    message = str(err.value)
    assert "nowhere (missing)" in message and "not a readable tar archive" in message
    assert "set data.root" in message and "\n" not in message
    assert not (tmp_path / "raw/spoken_digits").exists(), "a failed download leaves nothing behind"


def test_without_the_audio_extra_the_stage_names_the_install(
    monkeypatch: pytest.MonkeyPatch, fsdd: Path
) -> None:
    monkeypatch.setitem(sys.modules, "librosa", None)  # what an environment without it raises
    with pytest.raises(MissingExtra) as err:
        speech.log_mel(next(fsdd.glob("*.wav")), AudioConfig())
    assert str(err.value) == (
        "data=spoken_digits needs librosa, which is not installed: pip install -e '.[audio]'"
    )
