"""μP's width-aware learning rates: which parameters get the scaled rate, and a real fit with them."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from scalelab.config import CNN_FAMILY, ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.models import build
from scalelab.training import width_scaling
from scalelab.training.fit import fit


def ids(params: list[torch.Tensor]) -> set[int]:
    return {id(p) for p in params}


def test_hidden_and_readout_weights_take_the_scaled_rate_the_rest_the_base_rate() -> None:
    net = build(ModelConfig(size="l", ladder={"l": {"width": 512, "depth": 2}}), [1, 28, 28], 10)
    base, wide = width_scaling.param_groups(net, 1e-3, width_ratio=2.0)
    assert (base["lr"], wide["lr"]) == (1e-3, 5e-4)
    first, hidden, readout = width_scaling.weighted_layers(net)
    assert ids(wide["params"]) == ids([hidden.weight, readout.weight])
    assert ids(base["params"]) == ids([first.weight, first.bias, hidden.bias, readout.bias])


def test_in_a_cnn_only_the_first_convolution_and_vector_parameters_keep_the_base_rate() -> None:
    net = build(
        ModelConfig(_target_=CNN_FAMILY, size="s", ladder={"s": {"width": 8, "depth": 2}}), [1, 28, 28], 10
    )
    base, wide = width_scaling.param_groups(net, 1e-3, width_ratio=0.5)
    layers = width_scaling.weighted_layers(net)
    assert wide["lr"] == 2e-3 and ids(wide["params"]) == ids([m.weight for m in layers[1:]])
    norms = [p for m in net.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    assert ids(norms) <= ids(base["params"]) and layers[0].weight in base["params"]
    assert len(base["params"]) + len(wide["params"]) == len(list(net.parameters()))


def test_a_mup_fit_starts_from_a_zero_readout_uses_the_scaled_rates_and_learns(
    digits: Path, tmp_path: Path
) -> None:
    seen: dict[str, object] = {}

    class AtStart(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            readout = width_scaling.weighted_layers(pl_module.net)[-1]
            seen["readout"] = readout.weight.detach().clone()
            seen["lrs"] = [group["lr"] for group in trainer.optimizers[0].param_groups]

    model = ModelConfig(size="s", ladder={"s": {"width": 64, "depth": 2}})
    trainer = TrainerConfig(max_epochs=8, batch_size=64, progress_bar=False, lr_scaling="mup", base_width=256)
    data = PreparedDataModule(digits, trainer.batch_size, 0, trainer.steps_per_call)
    result = fit(model, trainer, data, seed=0, out_dir=tmp_path, callbacks=[AtStart()])
    assert torch.count_nonzero(seen["readout"]) == 0
    assert seen["lrs"] == [1e-3, 4e-3], "width 64 of base 256: hidden and readout at 4x"
    assert result.metrics["val/acc"] > 0.8
