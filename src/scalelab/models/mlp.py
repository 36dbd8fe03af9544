"""The seed's multi-layer perceptron, with width and depth as its size knobs."""

from __future__ import annotations

import math

import torch
from torch import nn

from scalelab.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def activation_layer(name: str) -> nn.Module:
    """A fresh `name` activation; a `ConfigError` for a name the families do not know."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"model.kwargs.activation={name!r} is invalid: use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(input_shape: list[int], num_classes: int, width: int, depth: int, activation: str = "relu") -> MLP:
    """The family `model=mlp` names (`model._target_`): a rung is a width and a depth."""
    return MLP(in_features(input_shape), hidden_sizes(width, depth), num_classes, activation)


def hidden_sizes(width: int, depth: int) -> list[int]:
    """Hidden layer widths: `width`, then halving each layer (the seed: 256 -> [256, 128])."""
    return [max(1, width // 2**i) for i in range(depth)]


class MLP(nn.Module):
    """Flatten, then [Linear -> activation] per hidden layer, then Linear to class logits."""

    def __init__(
        self, in_features: int, hidden: list[int], num_classes: int, activation: str = "relu"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip([in_features, *hidden], hidden, strict=False):
            layers += [nn.Linear(fan_in, fan_out), activation_layer(activation)]
        layers.append(nn.Linear(hidden[-1] if hidden else in_features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, H, W) or (batch, H*W) -> (batch, num_classes) logits."""
        return self.net(x)


def in_features(input_shape: list[int] | tuple[int, ...]) -> int:
    """Number of inputs once an image of `input_shape` is flattened."""
    return math.prod(input_shape)
