"""The joint law L(N, D) = E + A·N^(−α) + B·D^(−β): Chinchilla's approach 3, recovered when planted."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from scalelab.scaling import joint
from scalelab.scaling.joint import JointLaw, fit_joint
from tests.scaling.joint_coverage import CHINCHILLA, coverage


def grid(seeds: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Six model sizes x six data sizes, `seeds` runs per cell."""
    n, d = np.meshgrid(np.geomspace(1e6, 1e9, 6), np.geomspace(1e8, 1e11, 6), indexing="ij")
    return np.repeat(n.ravel(), seeds), np.repeat(d.ravel(), seeds)


def test_a_noise_free_planted_law_is_recovered_exactly() -> None:
    n, d = grid()
    fit = fit_joint(n, d, CHINCHILLA(n, d), resamples=0)
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(fit.law, name) == pytest.approx(getattr(CHINCHILLA, name), rel=1e-6), name
    assert fit.on_bound() == [] and fit.interval("alpha") is None


def test_seed_noise_gives_intervals_around_the_estimates_from_resampled_cells() -> None:
    n, d = grid(seeds=3)
    loss = CHINCHILLA(n, d) * np.exp(np.random.default_rng(0).normal(0, 0.01, len(n)))
    fit = fit_joint(n, d, loss, resamples=60)
    assert fit.method == "runs within cells" and (fit.rows, fit.cells) == (108, 36)
    for name, planted in [("alpha", 0.34), ("beta", 0.28), ("E", 1.69)]:
        low, high = fit.interval(name)
        assert low < fit.estimate(name) < high, name
        assert fit.estimate(name) == pytest.approx(planted, rel=0.05), name
    a, b = fit.law.exponents
    assert a + b == pytest.approx(1.0) and a == pytest.approx(0.28 / 0.62, abs=0.03)


def test_one_run_per_cell_resamples_runs() -> None:
    n, d = grid()
    loss = CHINCHILLA(n, d) * np.exp(np.random.default_rng(1).normal(0, 0.005, len(n)))
    assert fit_joint(n, d, loss, resamples=5).method == "runs"


def test_the_compute_optimal_allocation_minimises_the_law_on_its_budget() -> None:
    budget = 1e21
    n_opt, d_opt = CHINCHILLA.optimal(budget)
    assert 6 * n_opt * d_opt == pytest.approx(budget)
    for factor in (0.5, 0.8, 1.25, 2.0):  # any other split of the same compute does worse
        n = n_opt * factor
        assert CHINCHILLA(n, budget / (6 * n)) > CHINCHILLA(n_opt, d_opt)


def test_the_objectives_gradient_is_its_derivative() -> None:
    n, d = grid()
    args = (np.log(n), np.log(d), np.log(CHINCHILLA(n, d) * 1.05), 1.0)
    theta = np.array([5.0, 6.0, 0.3, 0.4, 0.3])
    value, gradient = (lambda t, i=i: joint._objective(t, *args)[i] for i in (0, 1))
    assert check_grad(value, gradient, theta) < 1e-5


def test_the_grid_is_evaluated_as_the_objective_would() -> None:
    n, d = grid()
    logs = (np.log(n[::7]), np.log(d[::7]), np.log(CHINCHILLA(n[::7], d[::7])))
    expected = [joint._objective(t, *logs, 1e-3)[0] for t in joint.GRID_POINTS[::97]]
    assert joint._grid_costs(*logs, 1e-3)[::97] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("params", "data", "message"),
    [
        ([1e6] * 6, [1e8, 1e9, 1e10] * 2, ">= 2 model sizes"),
        ([1e6, 1e7, 1e8], [1e8, 1e9, 1e10], ">= 6 runs"),
        ([1e6, 1e7, 0, 1e6, 1e7, 1e8], [1e8] * 3 + [1e9] * 3, "positive"),
    ],
)
def test_too_little_or_bad_data_is_refused(params: list[float], data: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_joint(np.array(params), np.array(data), np.full(len(params), 2.0), resamples=0)


def test_held_out_the_largest_data_size_is_predicted_better_than_persistence_when_the_law_holds() -> None:
    n, d = grid()
    loss = CHINCHILLA(n, d)
    held = joint.holdout_largest_data(n, d, loss)
    assert held["data_size"] == 1e11 and len(held["cells"]) == 6
    assert held["beats_persistence"] and held["rel_error"] < 1e-4
    assert joint.joint_verdict(fit_joint(n, d, loss, resamples=0), held) == []


def test_the_joint_verdict_names_a_data_axis_that_stopped_paying_and_one_too_short() -> None:
    n, d = grid()
    loss = CHINCHILLA(n, np.minimum(d, 1e10))  # past 1e10 samples, more data buys nothing
    fit = fit_joint(n, d, loss, resamples=0)
    held = joint.holdout_largest_data(n, d, loss)
    assert not held["beats_persistence"] and held["persistence_rel_error"] == 0
    reasons = joint.joint_verdict(fit, held)
    assert any("no better than each size's loss at the next set down" in r for r in reasons)
    two = d <= np.geomspace(1e8, 1e11, 6)[1]
    assert joint.holdout_largest_data(n[two], d[two], loss[two]) is None
    short = joint.joint_verdict(fit_joint(n[two], d[two], loss[two], resamples=0), None)
    assert "fewer than 3 training-set sizes: no held-out check of the law" in short


def test_without_a_model_size_at_both_largest_data_sizes_the_verdict_says_so() -> None:
    n, d = grid()
    top = d == d.max()
    keep = ~top | (n == n.max())  # at the largest D only the largest model, which stops one D below
    keep &= ~((n == n.max()) & (d == np.unique(d)[-2]))
    loss = CHINCHILLA(n, d)
    held = joint.holdout_largest_data(n[keep], d[keep], loss[keep])
    assert held is not None and held["cells"] == []
    reasons = joint.joint_verdict(fit_joint(n[keep], d[keep], loss[keep], resamples=0), held)
    assert any(r.startswith("no model size was trained at both D = ") for r in reasons)
    assert not any("fewer than 3 training-set sizes" in r for r in reasons)


def test_a_floor_the_data_cannot_see_is_named_on_its_bound() -> None:
    n, d = grid()
    no_floor = JointLaw(E=0.0, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    fit = fit_joint(n, d, no_floor(n, d), resamples=0)
    assert fit.on_bound() == ["E"]
    assert "E is on a bound of the fit" in joint.joint_verdict(fit, None)


def test_the_intervals_cover_planted_exponents_about_as_often_as_they_say() -> None:
    # A small version of the measurement in docs/fitting.md (50 studies: python -m
    # tests.scaling.joint_coverage): 95% intervals that missed often would fail here.
    found = coverage(studies=10, resamples=50, sizes=5, seeds=2)
    assert min(found["covered"].values()) >= 8, found
    for name, planted in found["planted"].items():
        assert found["mean_estimate"][name] == pytest.approx(planted, rel=0.05), name
