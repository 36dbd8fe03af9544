"""The power-law fit: recovers a planted law, and its bootstrap intervals are honest."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.scaling.law import PowerLaw, bootstrap_fit, fit_power_law

TRUE = PowerLaw(E=0.25, A=40.0, alpha=0.45)
SIZES = np.geomspace(3e3, 1.3e6, 5)  # the MLP ladder's span


def noisy(seeds: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = np.repeat(SIZES, seeds)
    return x, TRUE(x) * np.exp(rng.normal(0, noise, len(x)))


def test_exact_data_gives_back_the_law() -> None:
    law, _ = fit_power_law(SIZES, TRUE(SIZES))
    assert law.alpha == pytest.approx(0.45, rel=1e-3)
    assert pytest.approx(0.25, rel=1e-3) == law.E
    assert pytest.approx(40.0, rel=1e-2) == law.A


def test_noisy_data_recovers_alpha_and_floor_within_tolerance() -> None:
    # 3 seeds x 5 sizes, 2% multiplicative noise: alpha within +-0.05, E within +-0.03.
    x, y = noisy(3, 0.02, np.random.default_rng(7))
    law, _ = fit_power_law(x, y)
    assert abs(law.alpha - TRUE.alpha) < 0.05
    assert abs(law.E - TRUE.E) < 0.03


def test_fit_is_robust_to_one_wild_run() -> None:
    x, y = noisy(3, 0.01, np.random.default_rng(3))
    y[4] *= 3  # one diverged run at the middle size
    law, _ = fit_power_law(x, y)
    assert abs(law.alpha - TRUE.alpha) < 0.05 and abs(law.E - TRUE.E) < 0.03


@pytest.mark.slow
def test_bootstrap_interval_covers_the_truth_at_about_its_level() -> None:
    covered = {"alpha": 0, "E": 0}
    trials = 20
    for trial in range(trials):
        x, y = noisy(3, 0.02, np.random.default_rng(100 + trial))
        fit = bootstrap_fit(x, y, n_boot=150, seed=trial)
        assert fit is not None
        assert fit.alpha.low <= fit.law.alpha <= fit.alpha.high
        covered["alpha"] += fit.alpha.low <= TRUE.alpha <= fit.alpha.high
        covered["E"] += fit.E.low <= TRUE.E <= fit.E.high
    # Nominal 95%; percentile bootstraps under-cover a little with 15 points (0.85-0.9 seen).
    assert covered["alpha"] / trials >= 0.75
    assert covered["E"] / trials >= 0.75


def test_band_contains_the_fit_and_narrows_with_less_noise() -> None:
    x, y = noisy(3, 0.05, np.random.default_rng(1))
    wide = bootstrap_fit(x, y, n_boot=100)
    x, y = noisy(3, 0.005, np.random.default_rng(1))
    narrow = bootstrap_fit(x, y, n_boot=100)
    assert wide is not None and narrow is not None
    low, high = narrow.band(SIZES)
    assert np.all(low <= narrow.law(SIZES) + 1e-9) and np.all(narrow.law(SIZES) <= high + 1e-9)
    assert (wide.alpha.high - wide.alpha.low) > 3 * (narrow.alpha.high - narrow.alpha.low)


def test_three_points_fit_exactly_and_have_no_interval() -> None:
    assert bootstrap_fit(SIZES[:3], TRUE(SIZES[:3])) is None


def test_fewer_than_three_sizes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3 distinct sizes"):
        fit_power_law(np.array([1e3, 1e3, 1e4]), np.array([1.0, 1.1, 0.5]))
