"""Width-aware learning rates: μP's rule for Adam, so one tuned rate serves every rung.

Yang et al. 2022 ("Tensor Programs V", Table 3, μP for Adam; the `mup` package implements an
equivalent form that rescales the readout's output instead): weights whose fan-in grows with
width (the hidden layers and the readout) take a learning rate scaled by base_width / width;
the input layer's weights and every vector-like parameter (biases, batch-norm scales) keep the
base rate; the readout starts at zero. At width == base_width nothing changes but the readout's
initialisation, so the rate tuned there (the seed's Adam 1e-3 at width 256) carries along the
ladder instead of being too large for wide rungs and too small for narrow ones. Measured
against the constant rate and a per-rung search in docs/results.md.

Hand-written because the rule is a few lines over parameter groups; the `mup` package would also
replace every readout layer and needs base shapes saved per model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def weighted_layers(net: nn.Module) -> list[nn.Module]:
    """The layers with weight matrices or kernels, in the order the forward pass meets them."""
    return [m for m in net.modules() if isinstance(m, WEIGHTED)]


def zero_readout(net: nn.Module) -> None:
    """μP's readout initialisation: the last layer starts at zero (its bias too)."""
    readout = weighted_layers(net)[-1]
    nn.init.zeros_(readout.weight)
    if readout.bias is not None:
        nn.init.zeros_(readout.bias)


def prepare(net: nn.Module, width_ratio: float) -> None:
    """μP's initialisation: the family's own where it has one (`net.use_mup(width_ratio)`: the
    GPT family's tied readout cannot start at zero), else a zero readout."""
    if hasattr(net, "use_mup"):
        net.use_mup(width_ratio)
    else:
        zero_readout(net)


def param_groups(net: nn.Module, lr: float, width_ratio: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: hidden and readout weights at lr / width_ratio, the rest at lr.

    `width_ratio` is width / base_width. A family that names its own (`net.hidden_weights()`)
    scales those; else every weighted layer after the first.
    """
    if hasattr(net, "hidden_weights"):
        scaled = {id(weight) for weight in net.hidden_weights()}
    else:  # hidden and readout weights: fan-in ~ width
        scaled = {id(layer.weight) for layer in weighted_layers(net)[1:]}
    wide = [p for p in net.parameters() if id(p) in scaled]
    rest = [p for p in net.parameters() if id(p) not in scaled]  # input weights, biases, norms
    return [{"params": rest, "lr": lr}, {"params": wide, "lr": lr / width_ratio}]
