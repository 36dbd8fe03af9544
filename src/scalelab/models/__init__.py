"""Model families with a size knob, built from `model.*` config and the data's shape."""

from __future__ import annotations

from torch import nn

from scalelab.config import ModelConfig, RungConfig
from scalelab.models.cnn import CNN
from scalelab.models.initialisation import initialise
from scalelab.models.mlp import MLP, hidden_sizes, in_features


def rung(cfg: ModelConfig) -> RungConfig:
    """The rung `cfg.size` of the ladder, with `cfg.width` / `cfg.depth` overriding it if set."""
    base = cfg.ladder[cfg.size]
    return RungConfig(
        width=cfg.width if cfg.width is not None else base.width,
        depth=cfg.depth if cfg.depth is not None else base.depth,
    )


def build(cfg: ModelConfig, input_shape: list[int], num_classes: int) -> nn.Module:
    """Build and initialise the network `cfg` describes for inputs of `input_shape` (C, H, W)."""
    shape = rung(cfg)
    if cfg.name == "mlp":
        model: nn.Module = MLP(
            in_features(input_shape),
            hidden_sizes(shape.width, shape.depth),
            num_classes,
            cfg.activation,
        )
    elif cfg.name == "cnn":
        model = CNN(input_shape, shape.width, shape.depth, num_classes, cfg.activation)
    else:  # config.check refuses unknown families before we get here
        raise AssertionError(f"unknown model family {cfg.name}")
    initialise(model, cfg.init)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
