"""Benchmark: scalelab's training path for the GPT family vs a hand-written PyTorch loop, side by side.

Tiny Shakespeare (prepared as `data=shakespeare`: 128-character windows), the GPT rung `l`
(447,552 non-embedding parameters), batch 32, AdamW 3e-3 with warm-up and cosine per step,
gradient clipping at 1.0, the same token budget and the same batches. Both do a validation
pass at the end of each epoch. (b) is the real path of `pipelines/train.py`: Lightning module,
data module, checkpoints, MLflow logging into a SQLite store. Reports tokens per second of
both, their ratio (a)/(b) (the brief's bound: <= 1.10), and each one's model FLOP utilisation
against this machine's measured matmul rate.

    python -m benchmarks.lm_overhead [--tokens 500000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from benchmarks.common import save, table
from scalelab.config import DataConfig, ModelConfig, TrainerConfig
from scalelab.data.datamodule import InMemoryBatches, PreparedDataModule
from scalelab.data.prepare import prepare
from scalelab.data.split_files import load_split
from scalelab.models import build
from scalelab.models.flops import matmul_peak
from scalelab.training.budget import budget
from scalelab.training.module import warmup_cosine

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare"
MODEL = ModelConfig(
    _target_="scalelab.models.gpt.gpt",
    name="gpt",
    size="l",
    ladder={"l": {"width": 96, "depth": 4}},
    kwargs={"head_size": 16},
    init="torch_default",
)


def trainer_config(tokens: int) -> TrainerConfig:
    return TrainerConfig(
        batch_size=32,
        max_tokens=tokens,
        lr_schedule="warmup_cosine",
        warmup_steps=20,
        optimizer={"_target_": "torch.optim.AdamW", "lr": 3e-3, "weight_decay": 0.1, "fused": True},
        gradient_clip_val=1.0,
        progress_bar=False,
    )


def hand_loop(data_dir: Path, tokens: int, seed: int) -> dict[str, float]:
    """(a): the loop a user would write, on the same batches with the same schedule."""
    torch.manual_seed(seed)
    trainer_cfg = trainer_config(tokens)
    (x, y), (vx, vy) = load_split(data_dir, "train"), load_split(data_dir, "val")
    net = build(MODEL, [x.shape[1]], 65)
    optimizer = instantiate(trainer_cfg.optimizer, params=net.parameters())
    length = budget(trainer_cfg, len(x), context=x.shape[1])
    factor = functools.partial(warmup_cosine, warmup=trainer_cfg.warmup_steps, total=length.total_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    batches = InMemoryBatches(x, y, trainer_cfg.batch_size, shuffle=True, seed=seed, max_batches=length.steps)
    start, seen = time.perf_counter(), 0
    for epoch in range(length.epochs):
        net.train()
        batches.set_epoch(epoch)
        for xb, yb in batches:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(net(xb).flatten(0, 1), yb.flatten()).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), trainer_cfg.gradient_clip_val)
            optimizer.step()
            schedule.step()
            seen += yb.numel()
        net.eval()
        with torch.no_grad():
            val = sum(
                float(F.cross_entropy(net(xb).flatten(0, 1), yb.flatten(), reduction="sum"))
                for xb, yb in InMemoryBatches(vx, vy, 256, shuffle=False)
            )
    seconds = time.perf_counter() - start
    return {
        "tokens": seen,
        "seconds": seconds,
        "tokens_per_second": seen / seconds,
        "val_bpc": val / vy.numel() / math.log(2),
    }


def scalelab_path(data_dir: Path, tokens: int, seed: int, tmp: Path) -> dict[str, float]:
    """(b): scalelab's `fit` with its callbacks and MLflow logging, as `pipelines/train.py` runs it."""
    import mlflow

    from scalelab.training.fit import fit

    uri = f"sqlite:///{tmp}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    trainer_cfg = trainer_config(tokens)
    data = PreparedDataModule(data_dir, trainer_cfg.batch_size, seed, trainer_cfg.steps_per_call)
    with mlflow.start_run() as run:
        result = fit(
            MODEL,
            trainer_cfg,
            data,
            seed=seed,
            out_dir=tmp / "models",
            tracking_uri=uri,
            run_id=run.info.run_id,
        )
    m = result.metrics
    return {
        "tokens": m["train/tokens"],
        "seconds": m["train/seconds"],
        "tokens_per_second": m["train/tokens_per_second"],
        "val_bpc": result.history[-1]["val/bpc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of (a) and (b)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.chdir(tmp)
        data_dir = prepare(
            DataConfig(
                _target_="scalelab.data.text.shakespeare",
                name="shakespeare",
                system_dir=str(SHAKESPEARE),
                val_fraction=0.05,
                test_fraction=0.05,
            )
        )
        # Alternate (a) and (b) so drift on a shared machine hits both; the median of the
        # paired ratios is the figure to compare.
        hands, ours = [], []
        for _ in range(args.rounds):
            hands.append(hand_loop(data_dir, args.tokens, args.seed))
            ours.append(scalelab_path(data_dir, args.tokens, args.seed, tmp))
        per_token = build(MODEL, [128], 65).training_flops_per_token()  # type: ignore[operator]
        peak = matmul_peak()

    ratios = [h["tokens_per_second"] / o["tokens_per_second"] for h, o in zip(hands, ours, strict=True)]
    hand_rate = statistics.median(h["tokens_per_second"] for h in hands)
    our_rate = statistics.median(o["tokens_per_second"] for o in ours)
    result = {
        "model": "gpt l (width 96, depth 4), context 128, batch 32, AdamW + warm-up/cosine, clip 1.0",
        "tokens": args.tokens,
        "rounds": args.rounds,
        "hand_loop": hands,
        "scalelab": ours,
        "ratio": statistics.median(ratios),
        "round_ratios": ratios,
        "flops_per_token": per_token,
        "matmul_flops_per_second": peak,
        "mfu_hand_loop": per_token * hand_rate / peak,
        "mfu_scalelab": per_token * our_rate / peak,
    }
    path = save("lm_overhead", result)
    print(
        table(
            [
                ("hand loop (a)", f"{hand_rate:,.0f} tokens/s, MFU {result['mfu_hand_loop']:.2f}"),
                ("scalelab (b)", f"{our_rate:,.0f} tokens/s, MFU {result['mfu_scalelab']:.2f}"),
                (
                    "(a)/(b), median of rounds",
                    f"{result['ratio']:.3f}  (rounds: {', '.join(f'{r:.3f}' for r in ratios)})",
                ),
                ("validation bpc (a), (b)", f"{hands[-1]['val_bpc']:.3f}, {ours[-1]['val_bpc']:.3f}"),
                ("matmul rate", f"{peak / 1e9:.0f} GFLOP/s"),
            ]
        )
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
