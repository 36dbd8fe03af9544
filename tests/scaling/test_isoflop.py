"""IsoFLOP profiles (Chinchilla's approach 2): N_opt ∝ C^a from a parabola per compute budget."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from scalelab.scaling.fit import fit_isoflop_table, main
from scalelab.scaling.isoflop import fit_isoflop, isoflop_summary, profile
from tests.scaling.test_joint import CHINCHILLA

BUDGETS = (1e17, 1e18, 1e19, 1e20)


def isoflop_study(
    rng: np.random.Generator, seeds: int = 3, sigma: float = 0.01, budgets=BUDGETS, span: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of the planted law at each budget: 7 sizes around its optimum, D = C / (6N), log-normal
    seed noise."""
    compute, params, loss = [], [], []
    for c in budgets:
        n_opt, _ = CHINCHILLA.optimal(c)
        for n in n_opt * np.logspace(-span, span, 7):
            for _ in range(seeds):
                compute.append(c)
                params.append(n)
                loss.append(CHINCHILLA(n, c / (6 * n)) * np.exp(rng.normal(0, sigma)))
    return np.array(compute), np.array(params), np.array(loss)


def test_a_parabola_finds_the_lowest_point_of_a_profile() -> None:
    params = np.logspace(6, 10, 9)
    loss = np.exp(0.05 * (np.log(params) - np.log(3e8)) ** 2 + 0.5)
    found = profile(1e19, params, loss)
    assert found.n_opt == pytest.approx(3e8, rel=1e-6) and found.loss_opt == pytest.approx(np.exp(0.5))
    assert found.has_minimum and found.inside


def test_a_planted_compute_optimal_exponent_is_recovered_with_honest_intervals() -> None:
    planted = CHINCHILLA.exponents[0]  # a = β / (α + β)
    rng = np.random.default_rng(0)
    fits = [fit_isoflop(*isoflop_study(rng), resamples=200, seed=i) for i in range(50)]
    covered = sum(low <= planted <= high for low, high in (fit.interval() for fit in fits))
    assert covered >= 45, f"the 95% interval covered the planted a in {covered} of 50 studies"
    assert np.mean([fit.a for fit in fits]) == pytest.approx(planted, abs=0.01)
    assert all(fit.b == pytest.approx(1 - fit.a) for fit in fits)
    assert all(not fit.flags for fit in fits), "sizes span each optimum: nothing to flag"
    # Each budget's N_opt interval is a noise interval: it covers the parabola of the noise-free
    # runs (which sits a few % off the planted law's optimum, approach 2's shape bias).
    noise_free = fit_isoflop(*isoflop_study(rng, seeds=1, sigma=0.0), resamples=0)
    optima = [p.n_opt for p in noise_free.profiles]
    covered = sum(
        low <= n_opt <= high
        for fit in fits
        for i, n_opt in enumerate(optima)
        for low, high in [fit.n_opt_interval(i)]
    )
    assert covered >= 0.9 * 200, f"the budgets' N_opt intervals covered the planted {covered} of 200 times"


def test_a_language_model_study_reports_tokens_per_parameter_with_intervals() -> None:
    fit = fit_isoflop(*isoflop_study(np.random.default_rng(2)), resamples=200, unit="tokens")
    summary = isoflop_summary(fit)
    assert summary["unit"] == "tokens"
    for budget, row in zip(BUDGETS, summary["budgets"], strict=True):
        assert "samples_per_param" not in row
        assert row["tokens_per_param"] == pytest.approx(budget / (6 * row["n_opt"] ** 2))
        assert row["n_opt_ci_low"] < row["n_opt"] < row["n_opt_ci_high"]
        low, high = row["tokens_per_param_ci_low"], row["tokens_per_param_ci_high"]
        assert low == pytest.approx(budget / (6 * row["n_opt_ci_high"] ** 2)) and low < high
        n_opt, d_opt = CHINCHILLA.optimal(budget)
        assert d_opt / n_opt == pytest.approx(row["tokens_per_param"], rel=0.15), "near the planted ratio"


def test_the_held_out_budget_is_predicted_from_the_others() -> None:
    fit = fit_isoflop(*isoflop_study(np.random.default_rng(1), sigma=0.002), resamples=50)
    held = fit.holdout
    assert held is not None and held["compute"] == BUDGETS[-1]
    assert held["n_opt_rel_error"] < 0.25 and held["loss_opt_rel_error"] < 0.1
    n_opt, _ = CHINCHILLA.optimal(BUDGETS[-1])
    assert held["observed_n_opt"] == pytest.approx(n_opt, rel=0.25)


def test_an_optimum_outside_the_sizes_trained_and_too_few_budgets_are_flagged() -> None:
    compute, params, loss = isoflop_study(np.random.default_rng(2), budgets=BUDGETS[:2])
    shifted = params * 30  # every size far above each budget's optimum
    loss = CHINCHILLA(shifted, compute / (6 * shifted))
    fit = fit_isoflop(compute, shifted, loss, resamples=20)
    summary = isoflop_summary(fit)
    assert {"too_few_budgets", "minimum_outside"} <= set(summary["flags"]) and not summary["credible"]
    assert all(not budget["inside"] for budget in summary["budgets"])


def write_isoflop_runs(path: Path) -> Path:
    compute, params, loss = isoflop_study(np.random.default_rng(3), seeds=2)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["budget", "params", "loss", "notes"])
        writer.writerows(
            [repr(float(c)), repr(float(n)), repr(float(v)), "x"]
            for c, n, v in zip(compute, params, loss, strict=True)
        )
    return path


def test_the_table_interface_fits_approach_2_and_prints_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    table = write_isoflop_runs(tmp_path / "isoflop.csv")
    main(["--isoflop", str(table), "--resamples", "100"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == fit_isoflop_table(table, resamples=100)
    assert printed["a_ci_low"] <= CHINCHILLA.exponents[0] <= printed["a_ci_high"]
    assert printed["b"] == pytest.approx(1 - printed["a"])
    assert [b["compute"] for b in printed["budgets"]] == list(BUDGETS)
    ratio = printed["budgets"][0]["samples_per_param"]
    assert ratio == pytest.approx(printed["budgets"][0]["d_opt"] / printed["budgets"][0]["n_opt"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("params,loss\n1e6,2\n", "lacks the column(s) budget"),
        ("budget,params,loss\n1e18,1e6,0\n", "line 2: loss=0 must be positive"),
        ("budget,params,loss\n1e18,1e6,2\n1e18,2e6,1.9\n", "has 2 model sizes; a profile needs 3"),
    ],
)
def test_a_bad_isoflop_table_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    table = tmp_path / "runs.csv"
    table.write_text(content)
    with pytest.raises(SystemExit) as stop:
        main(["--isoflop", str(table)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"scalelab: error: {table}") and message in err and err.count("\n") == 1
