"""Count training FLOPs by running the model, not by rule of thumb.

`torch.utils.flop_counter.FlopCounterMode` counts the FLOPs of every matmul and convolution
(2 per multiply-add) in a real forward and backward pass. For an MLP that is close to the
familiar 6·N per sample (Kaplan et al. 2020, §2.1: 2N forward, 4N backward), less the input
gradient of the first layer, which backprop never computes: the seed's 784-256-128-10 MLP
counts 1,007,104 rather than 6·235,146 = 1,410,876. For convolutions, where weights are reused
across positions, it is far more than 6·N: the reason to count.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def training_flops_per_sample(net: nn.Module, input_shape: list[int], batch: int = 4) -> int:
    """FLOPs of one forward + backward pass per sample (optimizer step excluded).

    Counted on a copy: a training-mode pass would move a trained network's batch-norm statistics.
    A family that knows its count says so with a `training_flops_per_sample()` method (`model=gpt`:
    Kaplan et al.'s per-token count times the context).
    """
    if counted := getattr(net, "training_flops_per_sample", None):
        return int(counted())
    probe = copy.deepcopy(net).train()
    device = next(probe.parameters()).device
    x = torch.zeros(batch, *input_shape, device=device)
    with FlopCounterMode(display=False) as counter:
        logits = probe(x)
        F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long, device=device)).backward()
    return counter.get_total_flops() // batch
