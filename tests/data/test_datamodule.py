"""Feeding prepared tensors: whole batches from memory, an order set by (seed, epoch), and under
DDP each process's share of exactly the batches one process would see."""

from __future__ import annotations

import pytest
import torch

from scalelab.data.datamodule import InMemoryBatches, PreparedDataModule
from scalelab.errors import DataError


def test_in_memory_batches_visit_every_sample_once_per_epoch_in_an_order_set_by_seed_and_epoch() -> None:
    x = torch.arange(10.0).unsqueeze(1)
    y = torch.arange(10)
    batches = InMemoryBatches(x, y, batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 3

    def order(seed: int, epoch: int) -> torch.Tensor:
        batches = InMemoryBatches(x, y, batch_size=4, shuffle=True, seed=seed)
        batches.set_epoch(epoch)
        return torch.cat([yb for _, yb in batches])

    first, second = order(0, 0), order(0, 1)
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert not torch.equal(first, second), "a new order each epoch"
    assert torch.equal(order(0, 1), second), "the same (seed, epoch), the same order: resumable"
    assert not torch.equal(order(1, 1), second), "another seed, another order"
    for xb, yb in batches:
        assert torch.equal(xb.squeeze(1).long(), yb), "inputs stay aligned with labels"
    fixed = InMemoryBatches(x, y, batch_size=4, shuffle=False)
    assert torch.cat([yb for _, yb in fixed]).tolist() == list(range(10))


@pytest.mark.parametrize(("n", "world"), [(10, 2), (11, 3), (9, 2)])
def test_ddp_processes_split_every_batch_of_the_same_order_between_them(n: int, world: int) -> None:
    x = torch.arange(float(n)).unsqueeze(1)
    y = torch.arange(n)
    alone = InMemoryBatches(x, y, batch_size=4, shuffle=True, seed=3)
    shards = [
        InMemoryBatches(x, y, batch_size=4, shuffle=True, seed=3, rank=r, world=world) for r in range(world)
    ]
    for batches in (alone, *shards):
        batches.set_epoch(2)
    assert len({len(s) for s in shards}) == 1, "every process takes the same number of steps"
    together = zip(*shards, strict=True)
    for (_, whole), parts in zip(alone, together, strict=False):
        assert torch.equal(torch.cat([yb for _, yb in parts]), whole), "the shares make up the batch"
        assert max(len(yb) for _, yb in parts) - min(len(yb) for _, yb in parts) <= 1, "even shares"


def test_a_last_batch_too_small_to_share_is_dropped_under_ddp_only() -> None:
    x, y = torch.zeros(9, 1), torch.arange(9)
    assert len(InMemoryBatches(x, y, batch_size=4, shuffle=False)) == 3
    shards = [InMemoryBatches(x, y, batch_size=4, shuffle=False, rank=r, world=2) for r in range(2)]
    assert [len(s) for s in shards] == [2, 2], "one sample left over cannot feed two processes"
    assert sorted(torch.cat([yb for s in shards for _, yb in s]).tolist()) == list(range(8))


def test_the_data_axis_trains_on_nested_prefixes_and_keeps_validation_and_test_whole(digits) -> None:
    def splits(samples: int | None, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        data = PreparedDataModule(digits, batch_size=32, seed=seed, train_samples=samples)
        data.setup("fit")
        data.setup("test")
        return data.splits

    whole, small, large = splits(None), splits(100), splits(400)
    assert len(small["train"][1]) == 100 and len(large["train"][1]) == 400
    assert torch.equal(small["train"][0], large["train"][0][:100]), "a smaller set is a prefix of a larger"
    assert torch.equal(small["train"][1], large["train"][1][:100])
    rows = {tuple(row.tolist()) for row in whole["train"][0].flatten(1)}
    assert all(tuple(row.tolist()) in rows for row in large["train"][0].flatten(1)), "drawn from the split"
    for split in ("val", "test"):
        assert torch.equal(small[split][0], whole[split][0]), f"{split} never shrinks"
    assert not torch.equal(splits(100, seed=1)["train"][1], small["train"][1]), "each seed its own draw"
    assert torch.equal(splits(100)["train"][0], small["train"][0]), "the same seed, the same draw"


def test_asking_for_more_training_samples_than_the_split_has_is_refused(digits) -> None:
    data = PreparedDataModule(digits, batch_size=32, train_samples=100_000)
    with pytest.raises(DataError, match=r"data.train_samples=100000 is more than the \d+ training samples"):
        data.setup("fit")


def test_text_asked_for_more_windows_than_its_span_holds_repeats_the_span_in_passes(tiny_text) -> None:
    def train(samples: int | None) -> torch.Tensor:
        data = PreparedDataModule(tiny_text, batch_size=32, seed=0, train_samples=samples)
        data.setup("fit")
        return data.splits["train"][0]

    whole = train(None)
    n = len(whole)
    repeated = train(2 * n + 100)
    assert len(repeated) == 2 * n + 100
    assert torch.equal(repeated[:n], whole) and torch.equal(repeated[n : 2 * n], whole), "whole passes first"
    assert torch.equal(repeated[2 * n :], train(100)), "then the prefix a data axis would take"
