"""The Transformer language-model family: exact parameter and FLOP counts, a ladder over two
orders of magnitude, causal attention, a tied readout, and clear refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from scalelab.errors import ConfigError
from scalelab.models.gpt import gpt

LADDER_FILE = Path(__file__).resolve().parents[2] / "conf/model/gpt.yaml"
VOCAB, CONTEXT = 65, 128  # Tiny Shakespeare's characters, conf/data/shakespeare.yaml's context


def test_the_smallest_rung_counts_as_worked_out_by_hand() -> None:
    smallest = yaml.safe_load(LADDER_FILE.read_text())["ladder"]["xxs"]
    assert smallest == {"width": 16, "depth": 1}
    net = gpt([CONTEXT], VOCAB, **smallest)
    w, layers = 16, 1
    block = (
        2 * w  # LayerNorm before attention: weight and bias
        + (w * 3 * w + 3 * w)  # query, key and value projection
        + (w * w + w)  # attention output projection
        + 2 * w  # LayerNorm before the MLP
        + (w * 4 * w + 4 * w)  # MLP up
        + (4 * w * w + w)  # MLP down
    )
    non_embedding = layers * block + 2 * w  # and the final LayerNorm
    assert non_embedding == 12 * w**2 * layers + 13 * w * layers + 2 * w == 3_312
    assert net.non_embedding_params() == net.scaling_params() == non_embedding
    embeddings = VOCAB * w + CONTEXT * w  # tokens and positions; the tied readout adds nothing
    assert sum(p.numel() for p in net.parameters()) == non_embedding + embeddings == 6_400
    # Kaplan et al. 2020, Table 1: 6N + 6 n_layer n_ctx d_attn per token trained
    assert net.training_flops_per_token() == 6 * 3_312 + 6 * layers * CONTEXT * w == 32_160
    assert net.training_flops_per_sample() == CONTEXT * 32_160, "a sample is a window of CONTEXT tokens"


def test_every_rung_of_the_ladder_has_the_count_its_comment_gives() -> None:
    config = yaml.safe_load(LADDER_FILE.read_text())
    comments = dict(re.findall(r"^\s+(\w+): \{.*\}\s+#\s+([\d,]+) params", LADDER_FILE.read_text(), re.M))
    counts = {}
    for size, rung in config["ladder"].items():
        net = gpt([CONTEXT], VOCAB, **rung, **config["kwargs"])
        counts[size] = net.non_embedding_params()
        assert int(comments[size].replace(",", "")) == counts[size], size
    assert len(counts) >= 6 and max(counts.values()) / min(counts.values()) >= 100, "two orders of magnitude"
    assert list(counts.values()) == sorted(counts.values())


def test_the_model_predicts_every_next_token_from_earlier_ones_only() -> None:
    torch.manual_seed(0)
    net = gpt([16], VOCAB, width=32, depth=2).eval()
    ids = torch.randint(0, VOCAB, (2, 16))
    logits = net(ids)
    assert logits.shape == (2, 16, VOCAB)
    changed = ids.clone()
    changed[:, 10] = (changed[:, 10] + 1) % VOCAB
    after = net(changed)
    assert torch.equal(logits[:, :10], after[:, :10]), "positions before the change see nothing of it"
    assert not torch.allclose(logits[:, 10:], after[:, 10:])


def test_the_readout_is_the_token_embedding() -> None:
    net = gpt([16], VOCAB, width=32, depth=1).eval()
    ids = torch.randint(4, VOCAB, (2, 16))  # token 3 is not in the input
    before = net(ids)
    with torch.no_grad():
        net.tokens.weight[3] += 1.0  # token 3's embedding, which is also its readout row
    after = net(ids)
    assert torch.equal(before[..., :3], after[..., :3]) and torch.equal(before[..., 4:], after[..., 4:])
    assert not torch.allclose(before[..., 3], after[..., 3]), "only token 3's logit moved"
    assert {name.split(".")[0] for name, _ in net.named_parameters()} == {
        "tokens",
        "positions",
        "blocks",
        "ln_f",
    }


def test_generation_extends_a_prompt_reproducibly() -> None:
    net = gpt([8], VOCAB, width=32, depth=1).eval()
    prompt = torch.tensor([[1, 2, 3]])
    first = net.generate(prompt, 20, torch.Generator().manual_seed(7))
    again = net.generate(prompt, 20, torch.Generator().manual_seed(7))
    assert first.shape == (1, 23) and torch.equal(first, again) and torch.equal(first[:, :3], prompt)


@pytest.mark.parametrize(
    ("shape", "width", "message"),
    [
        ([1, 28, 28], 32, r"model=gpt reads token windows \(context,\), not inputs of shape \[1, 28, 28\]"),
        ([64], 40, r"model=gpt width 40 is not a multiple of model.kwargs.head_size=16"),
    ],
    ids=["images", "width"],
)
def test_what_the_family_cannot_build_is_refused(shape: list[int], width: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        gpt(shape, VOCAB, width=width, depth=1)
