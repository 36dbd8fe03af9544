"""Fit the joint law L(N, D), or IsoFLOP profiles, to a table of runs, wherever they came from.

    python -m scalelab.scaling.fit runs.csv [--resamples 1000] [--seed 0]
    python -m scalelab.scaling.fit --isoflop runs.csv     # columns budget, params, loss

The CSV needs a header with `params` (N), `samples` or `tokens` (D: what each run trained on)
and `loss` (its evaluation loss), one row per run; other columns are ignored, and several runs
(seeds) of one (N, D) cell are resampled together. A study's own `reports/scaling.csv` works as
it is: its `model/params`, `data/train_samples` and `test/loss` stand in for the three.
Prints the estimates with 95% bootstrap intervals as JSON on stdout (keys documented in
docs/fitting.md); `fit_table` is the same thing as a function. With `--isoflop` the columns are
`budget` (the compute budget a run was trained under, FLOPs: the runs of one budget make its
profile), `params` and `loss`, and the output is `fit_isoflop_table`'s (approach 2: a, b).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.errors import ScalelabError, exit_on_user_error
from scalelab.scaling.isoflop import fit_isoflop, isoflop_summary
from scalelab.scaling.joint import fit_joint, joint_summary

DATA_COLUMNS = ("samples", "tokens")
LAB_COLUMNS = {  # scaling.csv's names for them
    "model/params": "params",
    "data/train_samples": "samples",
    "test/loss": "loss",
    "data/compute_budget": "budget",
}


def _read_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """The rows and header of a CSV; a study's own column names stand in for the short ones."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            header = [] if not rows else list(rows[0])
            if not {"params", "loss", "budget", *DATA_COLUMNS} & set(header):
                rows = [{LAB_COLUMNS.get(k, k): v for k, v in row.items()} for row in rows]
                header = [LAB_COLUMNS.get(k, k) for k in header]
    except FileNotFoundError:
        raise ScalelabError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ScalelabError(f"{path}: cannot read it as CSV ({err})") from None
    if not rows:
        raise ScalelabError(f"{path}: no runs (it needs a header and one row per run)")
    return rows, header


def _positive(
    path: Path, rows: list[dict[str, str]], header: list[str], columns: tuple[str, ...]
) -> np.ndarray:
    """The `columns` of every row as positive numbers, one column each."""
    missing = [c for c in columns if c not in header]
    if missing:
        raise ScalelabError(f"{path} lacks the column(s) {', '.join(missing)} (header: {', '.join(header)})")
    values = np.empty((len(rows), len(columns)))
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            try:
                values[i, j] = float(row[column])
            except (TypeError, ValueError):
                raise ScalelabError(
                    f"{path} line {i + 2}: {column}={row[column]!r} is not a number"
                ) from None
            if not (math.isfinite(values[i, j]) and values[i, j] > 0):
                raise ScalelabError(f"{path} line {i + 2}: {column}={row[column]} must be positive")
    return values


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(params, data, loss, data column) from a CSV; a `ScalelabError` names what is wrong."""
    rows, header = _read_rows(path)
    present = [c for c in DATA_COLUMNS if c in header]
    if len(present) != 1:
        what = "both samples and tokens" if present else "no samples or tokens column"
        raise ScalelabError(f"{path} has {what}: give D as exactly one of samples, tokens")
    values = _positive(path, rows, header, ("params", present[0], "loss"))
    return values[:, 0], values[:, 1], values[:, 2], present[0]


def fit_table(path: str | Path, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Fit L(N, D) to the runs in a CSV and return `summary`'s report."""
    params, data, loss, column = read_table(Path(path))
    try:
        fit = fit_joint(params, data, loss, resamples=resamples, seed=seed)
    except ValueError as err:
        raise ScalelabError(f"{path}: {err}") from None
    return joint_summary(fit, column)


def fit_isoflop_table(
    path: str | Path, resamples: int = 1000, seed: int = 0, flops_per_param_sample: float = 6.0
) -> dict[str, Any]:
    """Fit IsoFLOP profiles (approach 2) to the runs in a CSV with columns `budget` (the compute
    budget each run was trained under, FLOPs), `params` and `loss`; return `isoflop_summary`."""
    path = Path(path)
    rows, header = _read_rows(path)
    values = _positive(path, rows, header, ("budget", "params", "loss"))
    try:
        fit = fit_isoflop(*values.T, flops_per_param_sample, resamples=resamples, seed=seed)
    except ValueError as err:
        raise ScalelabError(f"{path}: {err}") from None
    return isoflop_summary(fit)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scalelab.scaling.fit",
        description="Fit L(N, D) = E + A/N^alpha + B/D^beta to a CSV (or, with --isoflop, IsoFLOP profiles).",
    )
    parser.add_argument("table", type=Path, help="CSV with params, samples (or tokens) and loss columns")
    parser.add_argument(
        "--isoflop",
        action="store_true",
        help="Chinchilla's approach 2 instead: columns budget (FLOPs), params and loss; N_opt ∝ C^a",
    )
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    args = parser.parse_args(argv)
    if args.resamples < 0:
        parser.error("--resamples must be >= 0")
    fit = fit_isoflop_table if args.isoflop else fit_table
    json.dump(fit(args.table, args.resamples, args.seed), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
