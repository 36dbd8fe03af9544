"""`python -m scalelab.scaling.fit FILE.csv`: the joint law from a table of anyone's runs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalelab.scaling.fit import fit_table, main
from tests.scaling.test_joint import CHINCHILLA, grid


def write_runs(path: Path, data_column: str = "tokens", **extra: str) -> Path:
    n, d = grid(seeds=2)
    loss = CHINCHILLA(n, d) * np.exp(np.random.default_rng(0).normal(0, 0.005, len(n)))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "params", data_column, "loss", "notes"])
        for i, row in enumerate(zip(n, d, loss, strict=True)):
            writer.writerow([f"r{i}", *(repr(float(v)) for v in row), extra.get("notes", "")])
    return path


def test_the_command_prints_the_estimates_with_intervals_as_json(tmp_path: Path) -> None:
    table = write_runs(tmp_path / "runs.csv")
    result = subprocess.run(
        [sys.executable, "-m", "scalelab.scaling.fit", str(table), "--resamples", "30"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert (report["runs"], report["cells"], report["data_column"]) == (72, 36, "tokens")
    assert set(report["estimates"]) == {"E", "A", "B", "alpha", "beta"}
    alpha = report["estimates"]["alpha"]
    assert alpha["low"] < alpha["estimate"] < alpha["high"]
    assert alpha["estimate"] == pytest.approx(0.34, rel=0.05)
    exponent = report["compute_optimal"]["N_opt_exponent"]["estimate"]
    assert exponent + report["compute_optimal"]["D_opt_exponent"]["estimate"] == pytest.approx(1.0)
    assert report["bootstrap"] == {"resamples": 30, "method": "runs within cells", "level": 0.95}
    assert report["on_bound"] == []


def test_the_function_is_the_command(tmp_path: Path) -> None:
    table = write_runs(tmp_path / "runs.csv", data_column="samples", notes="ignored")
    report = fit_table(table, resamples=0)
    assert report["data_column"] == "samples" and report["estimates"]["beta"]["low"] is None
    assert report["estimates"]["beta"]["estimate"] == pytest.approx(0.28, rel=0.05)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("params,loss\n1e6,2.0\n", "no samples or tokens column: give D as exactly one of samples, tokens"),
        ("params,samples,tokens,loss\n1,2,3,4\n", "has both samples and tokens"),
        ("params,tokens\n1e6,1e9\n", "lacks the column(s) loss"),
        ("params,tokens,loss\n1e6,1e9,2.0\n2e6,abc,1.9\n", "line 3: tokens='abc' is not a number"),
        ("params,tokens,loss\n1e6,1e9,-2.0\n", "line 2: loss=-2.0 must be positive"),
        ("params,tokens,loss\n", "no runs"),
        ("params,tokens,loss\n1e6,1e9,2\n1e7,1e9,1.9\n", "needs >= 6 runs"),
    ],
)
def test_a_bad_table_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    table = tmp_path / "runs.csv"
    table.write_text(content)
    with pytest.raises(SystemExit) as stop:
        main([str(table)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"scalelab: error: {table}") and message in err and err.count("\n") == 1


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nope.csv")])
    assert capsys.readouterr().err == f"scalelab: error: {tmp_path / 'nope.csv'}: no such file\n"
