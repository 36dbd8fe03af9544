"""The CNN family: shapes per rung, a ladder whose documented counts are true, FLOPs by hand."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from scalelab.config import ModelConfig
from scalelab.models import build, count_parameters
from scalelab.models.cnn import CNN, channels
from scalelab.models.flops import training_flops_per_sample
from tests.conftest import ROOT


def test_blocks_double_the_channels_and_halve_the_map() -> None:
    net = CNN([1, 28, 28], width=8, depth=2, num_classes=10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 8), (8, 8), (8, 16), (16, 16)]
    assert all(c.kernel_size == (3, 3) and c.bias is None for c in convs), "batch norm supplies the bias"
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 4
    assert net.features(torch.zeros(2, 1, 28, 28)).shape == (2, 16, 7, 7)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert channels(4, 3) == [4, 8, 16]


def test_the_head_pools_globally_so_parameters_are_convolutional() -> None:
    net = CNN([1, 28, 28], width=64, depth=3, num_classes=10)
    dense = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(256, 10)], "one readout on pooled channels"
    conv = sum(p.numel() for m in net.modules() if isinstance(m, nn.Conv2d) for p in m.parameters())
    assert conv / count_parameters(net)[0] > 0.99


def test_spectrograms_are_images_too_and_count_the_same() -> None:
    net = CNN([1, 32, 64], width=4, depth=3, num_classes=10).eval()  # (1, n_mels, frames)
    assert net.features(torch.zeros(3, 1, 32, 64)).shape == (3, 16, 4, 8)
    assert net(torch.zeros(3, 1, 32, 64)).shape == (3, 10)
    assert count_parameters(net) == count_parameters(CNN([1, 28, 28], 4, 3, 10))


def test_parameter_count_of_the_smallest_rung_by_hand() -> None:
    # Convs have no bias; each batch norm has a scale and a shift per channel.
    # 1->4: 36+8 = 44; 4->4: 144+8 = 152; 4->8: 288+16 = 304; 8->8: 576+16 = 592;
    # 8->16: 1,152+32 = 1,184; 16->16: 2,304+32 = 2,336; readout 16 -> 10: 170.  Total 4,782.
    assert count_parameters(CNN([1, 28, 28], 4, 3, 10)) == (4_782, 4_782)


def test_training_flops_of_the_smallest_rung_by_hand() -> None:
    # Forward multiply-adds (outputs x fan-in): 1->4 on 28x28: 3,136 x 9 = 28,224;
    # 4->4: 3,136 x 36 = 112,896; 4->8 on 14x14: 1,568 x 36 = 56,448; 8->8: 1,568 x 72 = 112,896;
    # 8->16 on 7x7: 784 x 72 = 56,448; 16->16: 784 x 144 = 112,896; readout 16*10 = 160.
    # Sum 479,968: forward FLOPs 959,936.
    # Backward: weight gradients cost the forward again; input gradients too, except for the
    # first layer, whose input needs none: 2 x 959,936 - 56,448 = 1,863,424.
    # Total 2,823,360 per sample (pooling's and batch norm's few FLOPs are not counted), against
    # 6N = 28,692: for convolutions 6N is off by 98x.
    net = CNN([1, 28, 28], 4, 3, 10)
    assert training_flops_per_sample(net, [1, 28, 28]) == 959_936 + 1_863_424


# Every ladder documented in conf/, with the input shapes its count columns are for.
LADDERS = [
    ("conf/model/mlp.yaml", "mlp", [[1, 8, 8], [1, 28, 28]]),
    ("conf/model/cnn.yaml", "cnn", [[1, 28, 28]]),
    ("conf/experiment/mnist1d_mlp.yaml", "mlp", [[1, 1, 40]]),
]


@pytest.mark.parametrize(("path", "family", "shapes"), LADDERS, ids=[p for p, _, _ in LADDERS])
def test_ladder_comments_in_conf_state_the_true_counts(
    path: str, family: str, shapes: list[list[int]]
) -> None:
    text = (ROOT / path).read_text()
    rows = re.findall(r"^\s+(\w+):\s+\{width: (\d+), depth: (\d+)\}\s+#([\d,| ]+) params", text, re.M)
    assert len(rows) >= 5
    ladder = {size: {"width": int(width), "depth": int(depth)} for size, width, depth, _ in rows}
    for size, _, _, documented in rows:
        columns = [int(c.replace(",", "")) for c in documented.split("|")]
        assert len(columns) == len(shapes), size
        for shape, count in zip(shapes, columns, strict=True):
            net = build(
                ModelConfig(_target_=f"scalelab.models.{family}.{family}", size=size, ladder=ladder),
                shape,
                10,
            )
            assert count_parameters(net)[0] == count, (size, shape)
            if family == "mlp":  # a bottleneck rung would measure the bottleneck, not the size
                widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
                assert min(widths) >= 10, (size, widths)
    for column in range(len(shapes)):
        counts = [int(r[3].split("|")[column].replace(",", "")) for r in rows]
        assert counts == sorted(counts), "rungs in order of size"
        assert counts[-1] / counts[0] >= 10**2.5, f"{shapes[column]}: at least 2.5 orders of magnitude"


def test_counting_flops_leaves_a_trained_network_untouched() -> None:
    net = CNN([1, 28, 28], 4, 2, 10).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    training_flops_per_sample(net, [1, 28, 28])
    assert not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "batch-norm statistics kept"
