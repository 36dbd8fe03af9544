"""A model family the lab does not ship: a residual MLP whose rungs say `hidden` and `blocks`."""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualMLP(nn.Module):
    """Linear(in -> hidden), `blocks` x [x + Linear(ReLU(Linear(x)))], Linear(hidden -> classes)."""

    def __init__(self, in_features: int, hidden: int, blocks: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            for _ in range(blocks)
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def residual_mlp(input_shape: list[int], num_classes: int, hidden: int, blocks: int = 1) -> ResidualMLP:
    """The factory `model._target_` names: called with the data's shape, its classes and a rung."""
    return ResidualMLP(math.prod(input_shape), hidden, blocks, num_classes)
