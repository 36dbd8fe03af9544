"""Training objectives by name: the loss that `trainer.loss` selects."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def loss_fn(name: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits (softmax folded in), or MSE between softmax and one-hot targets.
    A language model's (B, T, vocab) logits and (B, T) next tokens: the mean over every token."""
    if logits.dim() == 3:
        return loss_fn(name, logits.flatten(0, 1), y.flatten())
    if name == "mse":
        return F.mse_loss(logits.softmax(-1), F.one_hot(y, logits.shape[-1]).to(logits.dtype))
    return F.cross_entropy(logits, y)
