"""Evaluation: test metrics, per-class and per-group tables, and the most confident mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scalelab.evaluation import accuracy_by_group, per_class, plot_misclassified, score

CLASSES = ["a", "b", "c"]


def logits_for(predicted: list[int], confidence: list[float]) -> torch.Tensor:
    """Logits whose argmax is `predicted` with softmax probability ~`confidence`."""
    out = torch.zeros(len(predicted), 3)
    for i, (p, c) in enumerate(zip(predicted, confidence, strict=True)):
        out[i, p] = torch.log(torch.tensor(2 * c / (1 - c)))  # the other two share 1 - c
    return out


Y = torch.tensor([0, 0, 1, 1, 2, 2])
PRED = [0, 1, 1, 1, 0, 2]  # two mistakes: sample 1 (a->b) and sample 4 (c->a)
LOGITS = logits_for(PRED, [0.9, 0.6, 0.8, 0.7, 0.95, 0.5])


def test_score_names_metrics_as_mlflow_does_and_counts_the_confusion() -> None:
    metrics, confusion = score(LOGITS, Y, "cross_entropy")
    assert metrics["test/acc"] == pytest.approx(4 / 6)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_per_class_precision_and_recall_by_hand() -> None:
    rows = {r["class"]: r for r in per_class(LOGITS, Y, CLASSES)}
    assert rows["a"]["support"] == 2
    assert rows["a"]["precision"] == pytest.approx(1 / 2) and rows["a"]["recall"] == pytest.approx(1 / 2)
    assert rows["b"]["precision"] == pytest.approx(2 / 3) and rows["b"]["recall"] == pytest.approx(1.0)
    assert rows["c"]["precision"] == pytest.approx(1.0) and rows["c"]["recall"] == pytest.approx(1 / 2)


def test_accuracy_by_class_and_by_speaker() -> None:
    speakers = ["theo", "lucas", "theo", "lucas", "theo", "lucas"]
    rows = accuracy_by_group(LOGITS, Y, {"speaker": speakers}, CLASSES)
    table = {(r["by"], r["group"]): (r["count"], r["accuracy"]) for r in rows}
    assert table[("class", "a")] == (2, 0.5) and table[("class", "b")] == (2, 1.0)
    assert table[("speaker", "theo")] == (3, pytest.approx(2 / 3))  # 0 right, 2 right, 4 wrong
    assert table[("speaker", "lucas")] == (3, pytest.approx(2 / 3))  # 1 wrong, 3 right, 5 right


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 32, 64)], ids=["images", "spectrograms"])
def test_the_most_confident_mistakes_come_first(tmp_path: Path, shape: tuple[int, ...]) -> None:
    x = torch.rand(6, *shape)
    chosen = plot_misclassified(tmp_path / "worst.png", x, Y, LOGITS, CLASSES, "test")
    assert chosen == [4, 1], "c->a at 0.95 before a->b at 0.6; right answers never shown"
    assert (tmp_path / "worst.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
