"""A decoder-only Transformer language model (GPT-2's block, Radford et al. 2019), with width and
depth as its size knobs: the family of the scaling-law papers (Kaplan et al. 2020; Hoffmann et al.
2022).

Pre-LayerNorm blocks: x + attention(LN(x)), then x + MLP(LN(x)); causal self-attention through
`torch.nn.functional.scaled_dot_product_attention` (fused kernels where the device has them);
a GELU MLP four times as wide; learned positions; the readout tied to the token embedding
(Press & Wolf 2017), so the vocabulary is paid for once.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.errors import ConfigError


def gpt(
    input_shape: list[int],
    num_classes: int,
    width: int,
    depth: int,
    head_size: int = 16,
    dropout: float = 0.0,
) -> GPT:
    """The family `model=gpt` names (`model._target_`): a rung is a width (d_model) and a depth
    (blocks); `input_shape` is (context,) and `num_classes` the vocabulary."""
    if len(input_shape) != 1:
        raise ConfigError(
            f"model=gpt reads token windows (context,), not inputs of shape {input_shape}: "
            f"use a text dataset (data=shakespeare, or data=text data.root=PATH)"
        )
    if width % head_size:
        raise ConfigError(
            f"model=gpt width {width} is not a multiple of model.kwargs.head_size={head_size}: "
            f"choose widths that are"
        )
    return GPT(num_classes, input_shape[0], width, depth, width // head_size, dropout)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier ones."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, width) -> (B, T, width)."""
        batch, length, width = x.shape
        q, k, v = (  # each (B, heads, T, head_size)
            part.view(batch, length, self.heads, width // self.heads).transpose(1, 2)
            for part in self.qkv(x).split(width, dim=2)
        )
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)) (pre-LN: GPT-2, Xiong et al. 2020)."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab), T <= context."""

    def __init__(
        self, vocab: int, context: int, width: int, depth: int, heads: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.vocab, self.context, self.width, self.depth, self.heads = vocab, context, width, depth, heads
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        # μP's output multiplier on the tied readout (`use_mup`); 1 otherwise. A buffer, so a saved
        # model keeps it; checkpoints from before it existed load with 1.
        self.register_buffer("readout_scale", torch.ones(()))
        self._register_load_state_dict_pre_hook(self._default_readout_scale)
        self._init_weights()

    @staticmethod
    def _default_readout_scale(state: dict[str, Any], prefix: str, *_: Any) -> None:
        state.setdefault(prefix + "readout_scale", torch.ones(()))

    def hidden_weights(self) -> list[nn.Parameter]:
        """The matrices whose fan-in grows with width: every block's attention and MLP weights
        (the embeddings are μP's input weights; the readout is the token embedding)."""
        return [m.weight for block in self.blocks for m in block.modules() if isinstance(m, nn.Linear)]

    @torch.no_grad()
    def use_mup(self, width_ratio: float) -> None:
        """μP for this family at `width_ratio` = width / base_width (Yang et al. 2022, Table 3 for
        Adam; a tied readout as the `mup` package's MuSharedReadout does it): hidden matrices start
        with GPT-2's std divided by sqrt(width_ratio) (variance ~ 1/fan-in) and train at the rate
        divided by width_ratio (`scalelab.training.width_scaling`); embeddings, biases and norms
        keep both; the logits are multiplied by 1/width_ratio. Heads keep their size along the
        ladder, so attention's 1/sqrt(head size) needs no change."""
        for weight in self.hidden_weights():
            weight.div_(math.sqrt(width_ratio))
        self.readout_scale.fill_(1.0 / width_ratio)

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights and embeddings, zero biases, and each
        residual branch's last projection scaled by 1/sqrt(2·depth) (Radford et al. 2019, §2.3)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for last in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(last.weight, std=0.02 / math.sqrt(2 * self.depth))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, T, vocab) logits."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.tokens(ids) + self.positions(positions))  # (B, T, width)
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.tokens.weight) * self.readout_scale  # the readout is tied

    def embedding_params(self) -> int:
        """The token and position embeddings' parameters (the tied readout adds none)."""
        return self.tokens.weight.numel() + self.positions.weight.numel()

    def non_embedding_params(self) -> int:
        """N as Kaplan et al. (2020, §2.1) count it: every parameter but the embeddings
        (each block's 12·width² + 13·width, and the final LayerNorm's 2·width)."""
        return sum(p.numel() for p in self.parameters()) - self.embedding_params()

    def scaling_params(self) -> int:
        """The N of this family's scaling law (`model/params`): non-embedding parameters."""
        return self.non_embedding_params()

    def training_flops_per_sample(self) -> int:
        """A sample is a window of `context` tokens, each predicted."""
        return self.training_flops_per_token() * self.context

    def training_flops_per_token(self) -> int:
        """C = 6N + 6·depth·context·width: Kaplan et al. (2020), Table 1 — a forward pass costs
        2N plus 2·n_layer·n_ctx·d_attn for causal attention's scores and weighted sums, a backward
        pass twice the forward. Like Kaplan, it leaves out the embeddings and the tied readout."""
        return 6 * self.non_embedding_params() + 6 * self.depth * self.context * self.width

    @torch.no_grad()
    def generate(
        self, ids: torch.Tensor, length: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Append `length` tokens to (B, T) `ids`, each sampled from the model's distribution
        given the last `context` tokens; returns (B, T + length)."""
        for _ in range(length):
            logits = self(ids[:, -self.context :])[:, -1]  # (B, vocab)
            next_id = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            ids = torch.cat([ids, next_id], dim=1)
        return ids
