"""Feed prepared tensors to Lightning from memory: whole batches by slicing, no per-sample work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from scalelab.data.split_files import load_split, read_manifest
from scalelab.errors import DataError

SUBSET_STREAM = 2**31 - 1  # the seed's random stream for the data axis, apart from its epochs'


def subset_order(seed: int, n: int) -> torch.Tensor:
    """A fixed permutation of the `n` training samples for `seed`: the data axis trains on its
    first k, so for one seed every smaller training set is a prefix of every larger one."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, SUBSET_STREAM))
    return torch.randperm(n, generator=generator)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch`'s batch order: a function of (seed, epoch) alone, so a resumed
    training sees exactly the batches an uninterrupted one would have seen."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


def steps_per_epoch(train_size: int, batch_size: int, world: int = 1) -> int:
    """Batches (optimiser steps) in one pass over `train_size` samples: a last batch too small to
    give each of `world` processes a sample is dropped (`InMemoryBatches`)."""
    full, rest = divmod(train_size, batch_size)
    return full + (rest >= world)


class InMemoryBatches:
    """Iterate `(x, y)` batches of in-memory tensors, shuffled per epoch by `epoch_seed`.

    Hand-written because `DataLoader(TensorDataset)` indexes and collates sample by sample:
    slicing a random permutation is ~30x faster per epoch on small MLPs (measured on digits).
    Lightning calls `set_epoch` before each training epoch, as it does for a DistributedSampler.

    Under DDP (`world` processes), process `rank` gets its contiguous share of every batch of
    the same permutation: together the processes step on exactly the batches one process
    would, and DDP's averaged gradient is that batch's (equal shares: `batch_size` divisible by
    `world`). A last batch too small to give every process a sample is dropped, since every
    process must take the same number of steps.

    With `max_batches` (a token budget's steps, over all epochs), the epoch that reaches it is
    cut short there and later epochs are empty.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        max_batches: int | None = None,
    ) -> None:
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.seed, self.epoch = seed, 0
        self.rank, self.world = rank, world
        self.max_batches = max_batches

    def set_epoch(self, epoch: int) -> None:
        """Choose the batch order of `epoch` (0-based)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches in the current epoch."""
        per_epoch = steps_per_epoch(len(self.y), self.batch_size, self.world)
        if self.max_batches is None:
            return per_epoch
        return max(0, min(per_epoch, self.max_batches - self.epoch * per_epoch))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(n, generator=generator)
            x, y = self.x[order], self.y[order]
        else:
            x, y = self.x, self.y
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            size = min(self.batch_size, n - start)
            lo, hi = start + size * self.rank // self.world, start + size * (self.rank + 1) // self.world
            yield x[lo:hi], y[lo:hi]


class Grouped:
    """Hand out the batches of an iterable `size` at a time, as lists.

    Lightning spends ~0.3 ms of bookkeeping around every training_step; a seed-MLP step takes
    ~1 ms. Grouping lets one training_step take several optimiser steps (see `Classifier`),
    which pays that cost once per group: the same updates, in the same order.
    """

    def __init__(self, batches: InMemoryBatches, size: int) -> None:
        self.batches, self.size = batches, size
        # Lightning looks for `sampler.set_epoch` on each train loader (`_set_sampler_epoch`).
        self.sampler = batches

    def __len__(self) -> int:
        return -(-len(self.batches) // self.size)

    def __iter__(self) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
        group: list[tuple[torch.Tensor, torch.Tensor]] = []
        for batch in self.batches:
            group.append(batch)
            if len(group) == self.size:
                yield group
                group = []
        if group:
            yield group


class PreparedDataModule(pl.LightningDataModule):
    """The train/val/test splits of one prepared dataset folder, held in memory.

    Training batches come in groups of `steps_per_call`; evaluation uses batches of
    `eval_batch_size` (no gradients, so the batch size changes nothing but speed). With
    `train_samples`, training sees only the first that many of `subset_order(seed)`; on text, more
    than the split holds are drawn in passes over it (whole passes, then the first of the order).
    """

    def __init__(
        self,
        folder: str | Path,
        batch_size: int,
        seed: int = 0,
        steps_per_call: int = 1,
        eval_batch_size: int = 2048,
        train_samples: int | None = None,
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.train_samples = train_samples
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_call = steps_per_call
        self.eval_batch_size = max(eval_batch_size, batch_size)
        self.manifest = read_manifest(self.folder)
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.max_steps: int | None = None  # a token budget's steps (training/budget.py)

    def setup(self, stage: str | None = None) -> None:
        """Load the splits the stage needs (once)."""
        wanted = ("test",) if stage == "test" else ("train", "val")
        for split in wanted:
            if split not in self.splits:
                self.splits[split] = load_split(self.folder, split)
                if split == "train" and self.train_samples is not None:
                    self.splits[split] = self._subset(*self.splits[split])

    def _subset(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        passes, rest = divmod(self.train_samples, len(y))
        if passes and self.manifest.get("kind") == "text":  # a token budget beyond the corpus repeats it
            keep = torch.cat([torch.arange(len(y))] * passes + [subset_order(self.seed, len(y))[:rest]])
            return x[keep], y[keep]
        if self.train_samples > len(y):
            raise DataError(
                f"data.train_samples={self.train_samples} is more than the {len(y)} training samples "
                f"of {self.manifest['dataset']}: use <= {len(y)}"
            )
        keep = subset_order(self.seed, len(y))[: self.train_samples]
        return x[keep], y[keep]

    def transfer_batch_to_device(self, group: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move a training group's tensors directly: Lightning's generic walk over the nested
        list costs ~2% of a seed-MLP epoch, and on CPU every move is a no-op."""
        if isinstance(group, list):
            return [(x.to(device, non_blocking=True), y.to(device, non_blocking=True)) for x, y in group]
        return super().transfer_batch_to_device(group, device, dataloader_idx)

    def _shard(self) -> dict[str, int]:
        """This process's place among the training processes (one without a Trainer: alone)."""
        trainer = self.trainer
        return {"rank": trainer.global_rank, "world": trainer.world_size} if trainer else {}

    def train_dataloader(self) -> Grouped:
        """The training batches; under a token budget, made again each epoch (Lightning's
        `reload_dataloaders_every_n_epochs=1`) so that the epoch it cuts short has its true length,
        and Lightning validates at that epoch's end."""
        x, y = self.splits["train"]
        batches = InMemoryBatches(
            x, y, self.batch_size, shuffle=True, seed=self.seed, max_batches=self.max_steps, **self._shard()
        )
        if self.trainer is not None:
            batches.set_epoch(self.trainer.current_epoch)
        return Grouped(batches, self.steps_per_call)

    def _eval_batches(self, split: str) -> InMemoryBatches:
        """Under DDP each process evaluates its contiguous part of the split; the metrics'
        states are summed across processes (`EpochStats`), so nothing is dropped or counted twice."""
        x, y = self.splits[split]
        if shard := self._shard():
            lo, hi = (len(y) * r // shard["world"] for r in (shard["rank"], shard["rank"] + 1))
            x, y = x[lo:hi], y[lo:hi]
        return InMemoryBatches(x, y, self.eval_batch_size, shuffle=False)

    def val_dataloader(self) -> InMemoryBatches:
        return self._eval_batches("val")

    def test_dataloader(self) -> InMemoryBatches:
        return self._eval_batches("test")
