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
import functools
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@functools.cache
def matmul_peak(device: str = "cpu", dtype: torch.dtype = torch.float32, size: int = 1024) -> float:
    """FLOP/s of this machine's (size x size) @ (size x size) matmuls in `dtype` on `device`,
    measured over ~0.3 s once per process: the denominator of model FLOP utilisation (MFU,
    Chowdhery et al. 2022, App. B), as a measured rate rather than a datasheet's."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(3):  # warm-up: thread pools, kernels
        a @ b
    sync()
    start, reps = time.perf_counter(), 0
    while time.perf_counter() - start < 0.3:
        a @ b
        reps += 1
        if reps % 10 == 0:
            sync()
    sync()
    return 2 * size**3 * reps / (time.perf_counter() - start)


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
