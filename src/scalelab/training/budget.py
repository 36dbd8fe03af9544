"""How long a training runs: `trainer.max_epochs` passes over the training set, or a language
model's token budget, `trainer.max_tokens`, as optimiser steps (the last epoch cut short).

A token budget is what the scaling-law papers hold fixed or sweep (Kaplan et al. 2020; Hoffmann
et al. 2022): D tokens at batch B and context T take ceil(D / (B·T)) steps, whatever the corpus
size, so two rungs given the same budget see the same number of tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalelab.config import TrainerConfig
from scalelab.data.datamodule import steps_per_epoch
from scalelab.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """A training's length: `epochs` epochs, the last cut to end at `steps` (None: whole epochs)."""

    epochs: int
    steps: int | None
    per_epoch: int

    @property
    def total_steps(self) -> int:
        """Optimiser steps if the training runs to its end (early stopping may end it before)."""
        return self.steps if self.steps is not None else self.epochs * self.per_epoch

    def samples_seen(self, steps_done: int, train_size: int, batch_size: int) -> int:
        """Training samples consumed by `steps_done` steps: whole epochs, then full batches (a cut
        epoch never reaches its short last batch)."""
        epochs, rest = divmod(steps_done, self.per_epoch)
        return epochs * train_size + rest * batch_size


def budget(trainer_cfg: TrainerConfig, train_size: int, context: int | None, world: int = 1) -> Budget:
    """The `Budget` of `trainer_cfg` on `train_size` samples of `context` tokens (None: not text)."""
    per_epoch = steps_per_epoch(train_size, trainer_cfg.batch_size, world)
    if trainer_cfg.max_tokens is None:
        return Budget(trainer_cfg.max_epochs, None, per_epoch)
    if context is None:
        raise ConfigError(
            f"trainer.max_tokens={trainer_cfg.max_tokens} counts a language model's tokens and this "
            f"dataset is not text; set trainer.max_tokens=null and use trainer.max_epochs"
        )
    steps = math.ceil(trainer_cfg.max_tokens / (trainer_cfg.batch_size * context))
    return Budget(math.ceil(steps / per_epoch), steps, per_epoch)
