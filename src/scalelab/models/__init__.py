"""Model families with a size knob, built from `model.*` config and the data's shape.

A family is any factory `model._target_` names, built-in (`scalelab.models.mlp.mlp`,
`scalelab.models.cnn.cnn`) or a user's own: it is called with the data's input shape, the
number of classes, the family's `model.kwargs` and the rung's keyword arguments.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from scalelab.config import ModelConfig, resolve_target
from scalelab.errors import ConfigError
from scalelab.models.initialisation import initialise


def rung(cfg: ModelConfig) -> dict[str, Any]:
    """The rung `cfg.size`'s arguments, with `cfg.width` / `cfg.depth` overriding them if set."""
    overrides = {
        key: value for key, value in (("width", cfg.width), ("depth", cfg.depth)) if value is not None
    }
    return {**cfg.ladder[cfg.size], **overrides}


def family(target: str) -> Any:
    """The factory `target` names; a `ConfigError` saying why if it cannot be imported."""
    return resolve_target(
        target, "model._target_", "give the dotted path of a function or class that builds the network"
    )


def build(cfg: ModelConfig, input_shape: list[int], num_classes: int) -> nn.Module:
    """Build and initialise the network `cfg` describes for inputs of `input_shape` (C, H, W)."""
    factory = family(cfg._target_)
    kwargs = {"input_shape": list(input_shape), "num_classes": num_classes, **cfg.kwargs, **rung(cfg)}
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as err:  # the family does not take a rung's (or model.kwargs') argument
        raise ConfigError(
            f"model {cfg.name} ({cfg._target_}) cannot take {kwargs}: {err}; "
            "give the rung (model.ladder) and model.kwargs the arguments the family takes"
        ) from None
    except ValueError:  # no signature to read (a builtin): let the call say what is wrong
        pass
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model._target_={cfg._target_!r} returned a {type(model).__name__}, not an nn.Module"
        )
    initialise(model, cfg.init)
    return model


def scaling_params(model: nn.Module) -> int:
    """N of the scaling law (`model/params`): every parameter, unless the family counts its own
    with a `scaling_params()` method (`model=gpt`: non-embedding parameters, as Kaplan et al.)."""
    if counted := getattr(model, "scaling_params", None):
        return int(counted())
    return count_parameters(model)[0]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
