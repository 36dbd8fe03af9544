"""Score a character-level language model on its test split: loss in nats and bits per character,
next-character accuracy, and a text sample from a fixed prompt to read beside the numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scalelab import atomic
from scalelab.data.text import vocab_of

SAMPLE_FILE = "sample.txt"
PROMPT_CHARS = 32  # the prompt: the test split's first characters, the same for every rung
SAMPLE_CHARS = 300
SAMPLE_SEED = 0


@torch.no_grad()
def score_text(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256
) -> tuple[dict[str, float], torch.Tensor]:
    """`test/loss` (nats per character), `test/bpc` and `test/acc` (next character) over every
    token of the (N, context) windows `x` and their targets `y`; and the predicted (N, context)."""
    net.eval()
    nats, predicted = 0.0, []
    for i in range(0, len(x), batch_size):
        logits = net(x[i : i + batch_size])  # (B, T, vocab)
        targets = y[i : i + batch_size].flatten()
        nats += float(F.cross_entropy(logits.flatten(0, 1), targets, reduction="sum"))
        predicted.append(logits.argmax(-1))
    guesses, tokens = torch.cat(predicted), y.numel()
    hits = int((guesses == y).sum())
    metrics = {"test/loss": nats / tokens, "test/bpc": nats / tokens / math.log(2), "test/acc": hits / tokens}
    return metrics, guesses


def fixed_prompt(folder: Path, manifest: dict[str, Any]) -> str:
    """The prompt every rung continues: the test split's first `PROMPT_CHARS` characters."""
    from scalelab.data.split_files import load_split

    x, _ = load_split(folder, "test")
    return vocab_of(manifest).decode(x[0, :PROMPT_CHARS].tolist())


def write_sample(path: Path, net: nn.Module, x: torch.Tensor, manifest: dict[str, Any]) -> str:
    """Continue the fixed prompt (the test split's first `PROMPT_CHARS` characters) by
    `SAMPLE_CHARS` characters sampled with a fixed seed; write and return prompt + continuation."""
    vocab = vocab_of(manifest)
    prompt = x[:1, :PROMPT_CHARS]
    generator = torch.Generator().manual_seed(SAMPLE_SEED)
    ids = net.generate(prompt, SAMPLE_CHARS, generator)  # type: ignore[operator]
    text = vocab.decode(ids[0].tolist())
    atomic.write_text(path, text)
    return text
