"""Fit the joint law L(N, D) to a table of runs, wherever they came from.

    python -m scalelab.scaling.fit runs.csv [--resamples 1000] [--seed 0]

The CSV needs a header with `params` (N), `samples` or `tokens` (D: what each run trained on)
and `loss` (its evaluation loss), one row per run; other columns are ignored, and several runs
(seeds) of one (N, D) cell are resampled together. A study's own `reports/scaling.csv` works as
it is: its `model/params`, `data/train_samples` and `test/loss` stand in for the three.
Prints the estimates with 95% bootstrap intervals as JSON on stdout (keys documented in
docs/fitting.md); `fit_table` is the same thing as a function.
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
from scalelab.scaling.joint import fit_joint, joint_summary

DATA_COLUMNS = ("samples", "tokens")
LAB_COLUMNS = {"model/params": "params", "data/train_samples": "samples", "test/loss": "loss"}  # scaling.csv


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(params, data, loss, data column) from a CSV; a `ScalelabError` names what is wrong."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            header = [] if not rows else list(rows[0])
            if not {"params", "loss", *DATA_COLUMNS} & set(header):
                rows = [{LAB_COLUMNS.get(k, k): v for k, v in row.items()} for row in rows]
                header = [LAB_COLUMNS.get(k, k) for k in header]
    except FileNotFoundError:
        raise ScalelabError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ScalelabError(f"{path}: cannot read it as CSV ({err})") from None
    if not rows:
        raise ScalelabError(f"{path}: no runs (it needs a header and one row per run)")
    present = [c for c in DATA_COLUMNS if c in header]
    if len(present) != 1:
        what = "both samples and tokens" if present else "no samples or tokens column"
        raise ScalelabError(f"{path} has {what}: give D as exactly one of samples, tokens")
    missing = [c for c in ("params", "loss") if c not in header]
    if missing:
        raise ScalelabError(f"{path} lacks the column(s) {', '.join(missing)} (header: {', '.join(header)})")
    columns = ("params", present[0], "loss")
    values = np.empty((len(rows), 3))
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
    return values[:, 0], values[:, 1], values[:, 2], present[0]


def fit_table(path: str | Path, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Fit L(N, D) to the runs in a CSV and return `summary`'s report."""
    params, data, loss, column = read_table(Path(path))
    try:
        fit = fit_joint(params, data, loss, resamples=resamples, seed=seed)
    except ValueError as err:
        raise ScalelabError(f"{path}: {err}") from None
    return joint_summary(fit, column)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scalelab.scaling.fit", description="Fit L(N, D) = E + A/N^alpha + B/D^beta to a CSV."
    )
    parser.add_argument("table", type=Path, help="CSV with params, samples (or tokens) and loss columns")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    args = parser.parse_args(argv)
    if args.resamples < 0:
        parser.error("--resamples must be >= 0")
    json.dump(fit_table(args.table, args.resamples, args.seed), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
