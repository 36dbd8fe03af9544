"""The LightningModule's fast bookkeeping gives the same numbers as torchmetrics' classics."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from scalelab.config import ModelConfig, TrainerConfig
from scalelab.data.datamodule import Grouped, InMemoryBatches, PreparedDataModule
from scalelab.training.fit import fit
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
        stats.update(logits.argmax(-1), y, loss * size)  # a batch: predictions and its loss sum
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


def test_the_progress_bar_shows_the_latest_epochs_metrics(digits: Path, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    class Peek(pl.Callback):
        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            seen.update(trainer.progress_bar_callback.get_metrics(trainer, pl_module))

    trainer = TrainerConfig(max_epochs=1, batch_size=64, progress_bar=True)
    data = PreparedDataModule(digits, trainer.batch_size, 0, trainer.steps_per_call)
    model = ModelConfig(size="s", ladder={"s": {"width": 16, "depth": 1}})
    result = fit(model, trainer, data, seed=0, out_dir=tmp_path, callbacks=[Peek()])
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "val/f1_macro"):
        assert seen[name] == result.metrics[name]
