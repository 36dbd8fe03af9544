"""Training objectives by name: the loss that `trainer.loss` selects."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def loss_fn(name: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits (softmax folded in), or MSE between softmax and one-hot targets."""
    if name == "mse":
        return F.mse_loss(logits.softmax(-1), F.one_hot(y, logits.shape[-1]).to(logits.dtype))
    return F.cross_entropy(logits, y)
