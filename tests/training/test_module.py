"""The LightningModule's fast bookkeeping gives the same numbers as torchmetrics' classics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from scalelab.data.datamodule import Grouped, InMemoryBatches
from scalelab.training.module import EpochStats


@pytest.mark.parametrize("classes_seen", [10, 7])  # 7: some classes neither true nor predicted
def test_epoch_stats_match_torchmetrics_accuracy_f1_and_mean_loss(classes_seen: int) -> None:
    generator = torch.Generator().manual_seed(classes_seen)
    stats = EpochStats(10)
    accuracy = MulticlassAccuracy(10, average="micro")
    f1 = MulticlassF1Score(10, average="macro")
    losses, counts = [], []
    for size in (128, 128, 37):  # a short last batch: the loss mean must weight by samples
        y = torch.randint(0, classes_seen, (size,), generator=generator)
        logits = torch.randn(size, 10, generator=generator)
        logits[:, classes_seen:] = -10  # never predicted either
        loss = F.cross_entropy(logits, y)
        stats.update(logits, y, loss)
        accuracy.update(logits, y)
        f1.update(logits, y)
        losses.append(float(loss) * size)
        counts.append(size)
    result = stats.compute()
    assert float(result["acc"]) == pytest.approx(float(accuracy.compute()), abs=1e-6)
    assert float(result["f1_macro"]) == pytest.approx(float(f1.compute()), abs=1e-6)
    assert float(result["loss"]) == pytest.approx(sum(losses) / sum(counts), rel=1e-6)


def test_grouped_batches_keep_every_batch_in_order() -> None:
    x, y = torch.arange(20.0).unsqueeze(1), torch.arange(20)
    batches = InMemoryBatches(x, y, batch_size=3, shuffle=False)
    groups = list(Grouped(batches, 3))
    assert len(Grouped(batches, 3)) == len(groups) == 3  # 7 batches -> 3 + 3 + 1
    assert [len(g) for g in groups] == [3, 3, 1]
    assert torch.cat([yb for g in groups for _, yb in g]).tolist() == list(range(20))
