"""The MLP family: the seed's exact network, a ladder whose documented counts are true, inits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scalelab.config import ModelConfig
from scalelab.models import build, count_parameters, rung
from scalelab.models.mlp import hidden_sizes

MNIST_SHAPE = [1, 28, 28]


def ladder() -> dict[str, dict[str, int]]:
    return {"s": {"width": 16, "depth": 2}, "l": {"width": 256, "depth": 2}}


def test_seed_mlp_784_256_128_10_has_235146_parameters() -> None:
    # 784*256+256 + 256*128+128 + 128*10+10 = 200,960 + 32,896 + 1,290
    net = build(ModelConfig(size="l", ladder=ladder()), MNIST_SHAPE, 10)
    assert count_parameters(net) == (235_146, 235_146)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 256), (256, 128), (128, 10)]
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 2


def test_hidden_layers_taper_by_half() -> None:
    assert hidden_sizes(256, 2) == [256, 128]
    assert hidden_sizes(64, 4) == [64, 32, 16, 8]
    assert hidden_sizes(2, 3) == [2, 1, 1]


def test_width_and_depth_override_the_rung() -> None:
    cfg = ModelConfig(size="s", ladder=ladder(), width=32, depth=3)
    assert rung(cfg) == {"width": 32, "depth": 3}
    net = build(cfg, [1, 8, 8], 10)
    assert net(torch.zeros(5, 1, 8, 8)).shape == (5, 10)


@pytest.mark.parametrize("scheme", ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"])
def test_named_inits_zero_the_biases(scheme: str) -> None:
    net = build(ModelConfig(size="s", ladder=ladder(), init=scheme), MNIST_SHAPE, 10)
    biases = [m.bias for m in net.modules() if isinstance(m, nn.Linear)]
    assert all(torch.count_nonzero(b) == 0 for b in biases)


def test_torch_default_init_is_left_alone() -> None:
    torch.manual_seed(0)
    net = build(ModelConfig(size="s", ladder=ladder(), init="torch_default"), MNIST_SHAPE, 10)
    assert torch.count_nonzero(net.net[1].bias) > 0


def test_xavier_uniform_respects_glorot_bound() -> None:
    net = build(ModelConfig(size="l", ladder=ladder()), MNIST_SHAPE, 10)
    first = net.net[1].weight.detach()
    bound = (6 / (784 + 256)) ** 0.5
    assert float(first.abs().max()) <= bound
    assert float(first.abs().max()) > 0.9 * bound
