"""Text corpora: a character vocabulary built from the training span, contiguous splits cut into
next-token windows, and every way a corpus can be wrong refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scalelab.config import DataConfig
from scalelab.data import text
from scalelab.data.prepare import prepare
from scalelab.data.split_files import load_split, read_manifest
from scalelab.errors import ConfigError, DataError

SHAKESPEARE_CHARS, SHAKESPEARE_TRAIN = 1_115_394, 1_003_854  # 90 % of the characters, rounded


def shakespeare_config(**overrides: object) -> DataConfig:
    settings = {"val_fraction": 0.05, "test_fraction": 0.05, "context": 128} | overrides
    return DataConfig(_target_="scalelab.data.text.shakespeare", name="shakespeare", **settings)


def text_config(root: Path, **overrides: object) -> DataConfig:
    settings = {"val_fraction": 0.1, "test_fraction": 0.1, "context": 8} | overrides
    return DataConfig(_target_="scalelab.data.text.text_file", name="text", root=str(root), **settings)


def test_a_vocabulary_round_trips_its_text() -> None:
    corpus = "To be, or not to be: that is the question.\nÉté — ünïcode too."
    vocab = text.CharVocab.of(corpus)
    ids = vocab.encode(corpus)
    assert ids.dtype == np.uint8 and len(ids) == len(corpus)
    assert vocab.decode(ids) == corpus
    assert list(vocab.chars) == sorted(set(corpus)), "ids follow the sorted characters"


def test_a_character_outside_the_vocabulary_is_refused_by_name_and_position() -> None:
    vocab = text.CharVocab.of("abc ")
    with pytest.raises(
        DataError,
        match=r"the prompt holds 2 character\(s\) the vocabulary does not \('X', 'Z'; first at character 3\)",
    ):
        vocab.encode("ab Z cX", "the prompt")


def test_windows_are_the_text_and_their_targets_the_next_characters() -> None:
    ids = np.arange(20, dtype=np.uint8)
    x, y = text.windows(ids, 6)
    assert x.shape == y.shape == (3, 6), "19 next-token pairs make 3 whole windows; the tail is left out"
    assert x[1].tolist() == [6, 7, 8, 9, 10, 11] and y[1].tolist() == [7, 8, 9, 10, 11, 12]


def test_splits_are_contiguous_spans_in_order() -> None:
    assert text.spans(1000, 0.05, 0.05) == {"train": (0, 900), "val": (900, 950), "test": (950, 1000)}


def test_shakespeare_is_prepared_from_the_local_copy_into_next_token_windows(
    shakespeare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = prepare(shakespeare_config(system_dir=str(shakespeare.parent)))
    manifest = read_manifest(folder)
    assert manifest["inputs"] == {"input.txt": text.SHAKESPEARE_SHA256}
    assert manifest["split"]["spans"] == {
        "train": [0, SHAKESPEARE_TRAIN],
        "val": [SHAKESPEARE_TRAIN, SHAKESPEARE_TRAIN + 55_770],
        "test": [SHAKESPEARE_TRAIN + 55_770, SHAKESPEARE_CHARS],
    }
    assert len(manifest["vocab"]) == manifest["num_classes"] == 65 and manifest["input_shape"] == [128]
    assert manifest["splits"]["train"]["count"] == (SHAKESPEARE_TRAIN - 1) // 128 == 7842
    assert manifest["tokens"]["train"] == 7842 * 128
    x, y = load_split(folder, "train")
    assert x.dtype == y.dtype == torch.int64 and x.shape == (7842, 128)
    assert torch.equal(x[:, 1:], y[:, :-1]), "each target is the next character"
    vocab = text.vocab_of(manifest)
    corpus = shakespeare.read_text()
    assert vocab.decode(x[0]) == corpus[:128] and vocab.decode(y[-1])[-1] == corpus[7842 * 128]
    val_x, _ = load_split(folder, "val")
    assert vocab.decode(val_x[0]) == corpus[SHAKESPEARE_TRAIN : SHAKESPEARE_TRAIN + 128]
    again = json.loads(
        (prepare(shakespeare_config(system_dir=str(shakespeare.parent))) / "manifest.json").read_text()
    )
    assert again["fingerprint"] == manifest["fingerprint"], "prepared the same, byte for byte"


def test_shakespeare_is_downloaded_from_a_mirror_and_verified(
    shakespeare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror
) -> None:
    url, served, requests = mirror
    monkeypatch.chdir(tmp_path)
    (served / "input.txt").write_bytes(shakespeare.read_bytes()[:-1] + b"?")  # one character off
    (served / "good.txt").write_bytes(shakespeare.read_bytes())
    cfg = shakespeare_config(mirrors=[f"{url}input.txt", f"{url}good.txt"])
    folder = prepare(cfg)
    assert requests == ["/input.txt", "/good.txt"], "the corrupt copy was refused, the next one used"
    assert read_manifest(folder)["origin"] == "data/raw/shakespeare/input.txt"
    with pytest.raises(DataError, match=r"shakespeare not found; tried: .*checksum mismatch"):
        prepare(shakespeare_config(mirrors=[f"{url}input.txt"], download_dir="elsewhere"))
    assert not list((tmp_path / "elsewhere").rglob("*.txt*")), "a corrupt download is not kept"


def test_a_wrong_copy_in_data_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("not Shakespeare\n")
    with pytest.raises(DataError, match=r"input.txt: checksum mismatch .* not the expected corpus"):
        prepare(shakespeare_config(root=str(tmp_path)))


def test_any_utf8_file_is_a_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abcdefgh" * 25)  # 200 characters: 160 train, 20 val, 20 test
    monkeypatch.chdir(tmp_path)
    manifest = read_manifest(prepare(text_config(corpus)))
    assert manifest["vocab"] == list("abcdefgh") and manifest["dataset"] == "text"
    assert {split: entry["count"] for split, entry in manifest["splits"].items()} == {
        "train": 19,
        "val": 2,
        "test": 2,
    }


def test_a_character_only_in_the_test_span_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abcd" * 40 + "abcd" * 5 + "abcZ" * 5)
    with pytest.raises(
        DataError,
        match=r"the test split of .*corpus.txt holds 1 character\(s\) .*\('Z'; first at character 3\)",
    ):
        prepare(text_config(corpus))


@pytest.mark.parametrize(
    ("content", "overrides", "error", "message"),
    [
        (b"\xff\xfe bad bytes", {}, DataError, r"is not UTF-8 text \(byte 0: invalid start byte\)"),
        (b"abc" * 10, {"context": 64}, DataError, r"fewer than one window of data.context=64"),
    ],
    ids=["not-utf8", "shorter-than-a-window"],
)
def test_a_corpus_that_cannot_be_used_is_refused_in_one_line(
    tmp_path: Path, content: bytes, overrides: dict, error: type, message: str
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    with pytest.raises(error, match=message):
        prepare(text_config(corpus, **overrides))
    assert not (tmp_path / "data").exists(), "nothing half-written"


def test_a_text_corpus_needs_its_file() -> None:
    with pytest.raises(ConfigError, match=r"data=text needs its corpus: set data\.root=PATH"):
        prepare(DataConfig(_target_="scalelab.data.text.text_file", name="text", test_fraction=0.1))
