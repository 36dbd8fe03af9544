"""Read back what training saved: the network from a checkpoint, without importing Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch import nn

from scalelab.config import ModelConfig
from scalelab.errors import DataError
from scalelab.readback import checked, load_torch

META_KEY = "scalelab"  # checkpoint["scalelab"]: model config, data shape, loss, run id, seed
CHECKPOINT_FILE = "model.ckpt"  # models/<size>/model.ckpt


def load_network(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained network from a checkpoint; return it (in eval mode) with its meta."""
    from scalelab.models import build

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run the train stage first (dvc repro train)")
    checkpoint = load_torch(path, keys=(META_KEY, "state_dict"))
    meta = checked(path, checkpoint[META_KEY], ("model", "input_shape", "num_classes"))
    model_cfg: ModelConfig = OmegaConf.to_object(  # type: ignore[assignment]
        OmegaConf.merge(OmegaConf.structured(ModelConfig), meta["model"])
    )
    net = build(model_cfg, meta["input_shape"], meta["num_classes"])
    state = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    return net.eval(), meta
