"""Weight initialisation schemes, chosen by name in `model.init`."""

from __future__ import annotations

from torch import nn

_WEIGHT_INITS = {
    "xavier_uniform": nn.init.xavier_uniform_,  # Keras' glorot_uniform: the seed's default
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
}


def initialise(model: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear/Conv weight with `scheme` and zero its bias, in place.

    `torch_default` keeps the initialisation the network was built with: PyTorch's own
    (Kaiming-uniform with a=sqrt(5)) for plain layers, the family's where it sets one (`model=gpt`).
    """
    if scheme == "torch_default":
        return
    init_weight = _WEIGHT_INITS[scheme]
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
            init_weight(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
