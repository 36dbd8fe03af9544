"""The power-law fit: least squares on log loss, from a grid of starts, inside a box."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from scalelab.scaling.law import Bounds, PowerLaw, _starts, fit_laws, fit_power_law

TRUE = PowerLaw(E=0.25, A=40.0, alpha=0.45)
SIZES = np.geomspace(3e3, 1e6, 6)  # six rungs over 2.5 orders of magnitude


def test_exact_data_gives_back_the_law() -> None:
    law, cost = fit_power_law(SIZES, TRUE(SIZES))
    assert law.alpha == pytest.approx(0.45, rel=1e-6)
    assert pytest.approx(0.25, rel=1e-6) == law.E
    assert pytest.approx(40.0, rel=1e-5) == law.A
    assert cost < 1e-20


def test_noisy_means_recover_alpha_and_floor_within_tolerance() -> None:
    y = TRUE(SIZES) * np.exp(np.random.default_rng(7).normal(0, 0.01, len(SIZES)))
    law, _ = fit_power_law(SIZES, y)
    assert abs(law.alpha - TRUE.alpha) < 0.05
    assert abs(law.E - TRUE.E) < 0.03


def test_the_batched_fit_reaches_scipys_minimum_from_the_same_starts() -> None:
    # scipy's trust-region least squares, one problem and one start at a time, tight tolerances
    rng = np.random.default_rng(11)
    ys = TRUE(SIZES) * np.exp(rng.normal(0, 0.05, (20, len(SIZES))))
    bounds = Bounds.for_losses(ys[0])
    _, costs = fit_laws(SIZES, ys, bounds)
    log_x = np.log(SIZES)
    for y, cost in zip(ys, costs, strict=True):
        log_y = np.log(y)

        def residuals(theta: np.ndarray, log_y: np.ndarray = log_y) -> np.ndarray:
            return np.logaddexp(theta[0] - theta[1] * log_x, theta[2]) - log_y

        inside = np.clip(_starts(log_x, log_y, bounds), bounds.lower + 1e-9, bounds.upper - 1e-9)
        best = min(
            2 * least_squares(residuals, s, bounds=(bounds.lower, bounds.upper), xtol=1e-15, ftol=1e-15).cost
            for s in inside
        )
        assert cost <= best * (1 + 1e-6) + 1e-15


def test_a_law_the_box_cannot_hold_is_pinned_to_the_bound() -> None:
    steep = PowerLaw(E=0.1, A=1e12, alpha=4.0)  # α beyond the box's 3
    law, _ = fit_power_law(SIZES, steep(SIZES))
    assert Bounds.for_losses(steep(SIZES)).touched(law) == ["alpha"]
    assert Bounds.for_losses(TRUE(SIZES)).touched(fit_power_law(SIZES, TRUE(SIZES))[0]) == []


def test_fewer_than_three_sizes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3 distinct sizes"):
        fit_power_law(np.array([1e3, 1e3, 1e4]), np.array([1.0, 1.1, 0.5]))
