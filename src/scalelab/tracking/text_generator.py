"""A trained language model as an MLflow pyfunc: prompts in, sampled continuations out, so that
`mlflow models serve` of the registered champion answers a prompt over HTTP.

Written as a `PythonModel` because MLflow's torch flavour serves tensors in and out, and a
character model's caller has text: the vocabulary (from the prepared dataset's manifest) turns
one into the other. A prompt with a character outside the vocabulary is refused by name.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

DEFAULTS = {"max_chars": 200, "seed": 0}  # the request's `params`; a fixed seed answers the same


class TextGenerator(mlflow.pyfunc.PythonModel):
    """Continue each prompt by `max_chars` characters sampled from the model (seeded by `seed`)."""

    def __init__(self, vocab: str) -> None:
        self.vocab = vocab

    def load_context(self, context: Any) -> None:
        from scalelab.training.saved import load_network

        self.net, _ = load_network(context.artifacts["checkpoint"])

    # A DataFrame hint: the signature is given explicitly, and MLflow infers none from it (with
    # `Any` it tries, and warns on every log that the hint is not a list[...])
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[str]:
        import torch

        from scalelab.data.text import CharVocab

        settings = DEFAULTS | (params or {})
        prompts = list(model_input["prompt"]) if hasattr(model_input, "columns") else list(model_input)
        vocab = CharVocab(self.vocab)
        answers = []
        for prompt in prompts:
            ids = torch.from_numpy(vocab.encode(str(prompt), "the prompt").astype("int64"))[None]
            generator = torch.Generator().manual_seed(int(settings["seed"]))
            out = self.net.generate(ids, int(settings["max_chars"]), generator)
            answers.append(vocab.decode(out[0, ids.shape[1] :].tolist()))
        return answers


def log_text_model(checkpoint: Path, manifest: dict[str, Any], prompt: str) -> None:
    """Log the language model in `checkpoint` to the active run as a `TextGenerator` with a
    signature (a `prompt` string column in, strings out, `max_chars` and `seed` as params)."""
    from mlflow.models import infer_signature

    model = TextGenerator("".join(manifest["vocab"]))
    example = pd.DataFrame({"prompt": [prompt]})
    signature = infer_signature(example, ["a continuation"], params=DEFAULTS)
    mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        artifacts={"checkpoint": str(checkpoint)},
        input_example=(example, DEFAULTS),
        signature=signature,
        pip_requirements=[f"torch=={version('torch').split('+')[0]}", f"mlflow=={version('mlflow')}"],
    )
