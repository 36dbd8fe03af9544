"""Bootstrap intervals by seed: honest coverage of a planted law, a fallback with one seed."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.scaling.intervals import fit_ladder
from scalelab.scaling.law import PowerLaw

TRUE = PowerLaw(E=0.25, A=40.0, alpha=0.45)
SIZES = np.geomspace(3e3, 1e6, 6)


def ladder(seeds: int, noise: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Each rung's test losses over `seeds` seeds, with multiplicative seed noise."""
    return [TRUE(x) * np.exp(rng.normal(0, noise, seeds)) for x in SIZES]


@pytest.mark.slow
def test_95_percent_intervals_cover_the_planted_alpha_at_least_90_percent_of_the_time() -> None:
    ladders, covered = 50, {"alpha": 0, "E": 0}
    for trial in range(ladders):
        fit = fit_ladder(SIZES, ladder(3, 0.03, np.random.default_rng(100 + trial)), n_boot=1000, seed=trial)
        assert fit.method == "seeds" and fit.resamples == 1000
        covered["alpha"] += fit.interval("alpha").contains(TRUE.alpha)
        covered["E"] += fit.interval("E").contains(TRUE.E)
    assert covered["alpha"] / ladders >= 0.90
    assert covered["E"] / ladders >= 0.90


def test_intervals_hold_the_point_fit_and_narrow_with_less_seed_noise() -> None:
    wide = fit_ladder(SIZES, ladder(3, 0.05, np.random.default_rng(1)), n_boot=300)
    narrow = fit_ladder(SIZES, ladder(3, 0.005, np.random.default_rng(1)), n_boot=300)
    assert narrow.interval("alpha").contains(narrow.law.alpha)
    low, high = narrow.band(SIZES)
    assert np.all(low <= narrow.law(SIZES) + 1e-9) and np.all(narrow.law(SIZES) <= high + 1e-9)
    width = {
        name: f.interval("alpha").high - f.interval("alpha").low for name, f in (("w", wide), ("n", narrow))
    }
    assert width["w"] > 3 * width["n"]


def test_the_fit_is_made_on_rung_means() -> None:
    losses = ladder(4, 0.03, np.random.default_rng(2))
    assert (
        fit_ladder(SIZES, losses, n_boot=0).law
        == fit_ladder(SIZES, [[s.mean()] for s in losses], n_boot=0).law
    )


def test_one_seed_falls_back_to_resampling_residuals_and_says_so() -> None:
    fit = fit_ladder(SIZES, ladder(1, 0.02, np.random.default_rng(3)), n_boot=200)
    assert fit.method == "residuals" and fit.resamples == 200 and fit.dof == len(SIZES) - 3


def test_three_rungs_of_one_seed_fit_exactly_and_have_no_interval() -> None:
    fit = fit_ladder(SIZES[:3], [np.array([TRUE(x)]) for x in SIZES[:3]], n_boot=200)
    assert fit.method == "none" and fit.interval("alpha") is None
