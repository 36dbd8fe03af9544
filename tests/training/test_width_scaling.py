"""μP's width-aware learning rates: which parameters get the scaled rate, and a real fit with them."""

from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from scalelab.config import CNN_FAMILY, GPT_FAMILY, ModelConfig, TrainerConfig
from scalelab.data.datamodule import PreparedDataModule
from scalelab.models import build
from scalelab.training import width_scaling
from scalelab.training.fit import fit
from scalelab.training.saved import CHECKPOINT_FILE, load_network


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


def change_in_logits(width: int, mup: bool, base: int = 32, lr: float = 1e-2) -> float:
    """How far 5 Adam steps move a GPT's logits (their std) at `width`, with or without μP."""
    torch.manual_seed(0)
    net = build(
        ModelConfig(_target_=GPT_FAMILY, size="w", ladder={"w": {"width": width, "depth": 2}}), [16], 30
    )
    if mup:
        width_scaling.prepare(net, width / base)
    groups = width_scaling.param_groups(net, lr, width / base) if mup else [{"params": net.parameters()}]
    optimizer = torch.optim.Adam(groups, lr=lr)
    generator = torch.Generator().manual_seed(1)
    x, y = (torch.randint(0, 30, (64, 16), generator=generator) for _ in range(2))
    with torch.no_grad():
        before = net(x)
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x).flatten(0, 1), y.flatten()).backward()
        optimizer.step()
    with torch.no_grad():
        return (net(x) - before).std().item()


def test_mup_keeps_a_gpt_s_update_size_as_it_widens_where_one_rate_for_all_does_not() -> None:
    """The coordinate check of Yang et al. (2022, §5): under μP how far training moves the logits
    does not depend on width; with one rate for every width it grows."""
    widths = (32, 128, 512)
    with_mup = [change_in_logits(w, mup=True) for w in widths]
    without = [change_in_logits(w, mup=False) for w in widths]
    assert max(with_mup) / min(with_mup) < 1.25, with_mup
    assert without[-1] / without[0] > 3, without
    assert with_mup[0] == without[0], "at the base width μP changes nothing"


def test_a_gpt_keeps_its_readout_scale_in_its_checkpoint_and_older_ones_load_with_one() -> None:
    model = ModelConfig(_target_=GPT_FAMILY, size="w", ladder={"w": {"width": 64, "depth": 1}})
    net = build(model, [16], 30)
    width_scaling.prepare(net, 2.0)
    state = net.state_dict()
    assert state["readout_scale"] == 0.5
    again = build(model, [16], 30)
    again.load_state_dict(state)
    x = torch.randint(0, 30, (2, 16))
    assert torch.equal(again(x), net(x)), "the saved model's logits, multiplier included"
    older = build(model, [16], 30)
    older.load_state_dict({k: v for k, v in state.items() if k != "readout_scale"})
    assert older.readout_scale == 1.0


def test_a_mup_gpt_trains_and_its_saved_model_keeps_the_readout_scale(
    tiny_text: Path, tmp_path: Path
) -> None:
    rung = {"w": {"width": 32, "depth": 1}}
    model = ModelConfig(_target_=GPT_FAMILY, name="gpt", size="w", ladder=rung, kwargs={"head_size": 8})
    trainer = TrainerConfig(max_epochs=2, batch_size=32, progress_bar=False, lr_scaling="mup", base_width=16)
    data = PreparedDataModule(tiny_text, trainer.batch_size, 0, trainer.steps_per_call)
    result = fit(model, trainer, data, seed=0, out_dir=tmp_path)
    assert result.metrics["val/loss"] < math.log(data.manifest["num_classes"]), "it learns"
    saved, _ = load_network(tmp_path / CHECKPOINT_FILE)
    assert saved.readout_scale == 0.5, "width 32 of base 16: logits times 1/2, in the saved model too"
