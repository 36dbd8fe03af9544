"""A ladder's law with bootstrap intervals: whole seeds resampled within each rung.

Seeds move a rung's loss by a few percent (Choshen et al. 2024), so the honest uncertainty of a
law fitted to rung means is that of the means: each resample draws every rung's seeds with
replacement, averages them, and refits from the full start grid (Besiroglu et al. 2024 found
Chinchilla's intervals far too narrow for want of this). With S seeds a resampled mean has
(S − 1)/S of the true variance, so the seeds' deviations are inflated by sqrt(S / (S − 1)) first
(Davison & Hinkley 1997, §3.3). With one seed per rung there is no seed noise to resample: the
log residuals of the fit are resampled instead, inflated for the three fitted coefficients, and
the fit says so (`method`).

Three seeds on six rungs estimate the noise from only 12 degrees of freedom, and percentile
intervals then cover a planted α ~90% of the time, not 95% (measured over 150 synthetic
ladders). As a t interval widens a z interval for an estimated variance, each resampled law is
moved away from the point fit by t(ν)/z (ν = Σ(seeds − 1), or rungs − 3 for residuals): the
same ladders then cover 91–95% (tests/scaling/test_intervals.py checks ≥ 90%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from scalelab.scaling.law import Bounds, PowerLaw, fit_laws, fit_power_law

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class LadderFit:
    """The law fitted to rung means, its box, and the laws refitted to each bootstrap resample."""

    law: PowerLaw
    bounds: Bounds
    method: str  # "seeds", "residuals", or "none" (too few points for an interval)
    resampled: np.ndarray  # (R, 3): a, α, e of each resample's law, stretched by t(ν)/z
    dof: int = 0  # ν: degrees of freedom of the noise estimate

    @property
    def resamples(self) -> int:
        return len(self.resampled)

    def interval(self, name: str, level: float = LEVEL) -> Interval | None:
        """Percentile interval of `alpha`, `E` or `A`; None without resamples."""
        if not self.resamples:
            return None
        column = {
            "A": np.exp(self.resampled[:, 0]),
            "alpha": self.resampled[:, 1],
            "E": np.exp(self.resampled[:, 2]),
        }
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(column[name], [tail, 100 - tail])
        return Interval(float(low), float(high))

    def curves(self, x: np.ndarray) -> np.ndarray:
        """Each resample's law evaluated at `x`: (R, len(x))."""
        a, alpha, e = (self.resampled[:, i : i + 1] for i in range(3))
        return np.exp(np.logaddexp(a - alpha * np.log(np.asarray(x, dtype=float)), e))

    def band(self, x: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise `level` band of the law over `x`."""
        tail = (1 - level) / 2 * 100
        curves = self.curves(x)
        return np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, axis=0)

    def on_bound(self) -> list[str]:
        """Coefficients pinned by the box: α (its estimate or interval end) or E (its estimate)."""
        hits = self.bounds.touched(self.law)
        alpha = self.interval("alpha")
        lower, upper = self.bounds.lower[1], self.bounds.upper[1]
        if alpha and "alpha" not in hits and (alpha.low - lower < 1e-3 or upper - alpha.high < 1e-3):
            hits.insert(0, "alpha")
        return hits


def fit_ladder(x: np.ndarray, losses: list[np.ndarray], n_boot: int = 1000, seed: int = 0) -> LadderFit:
    """Fit `E + A·x^(−α)` to the mean of each rung's `losses` (one array of seeds per x).

    `n_boot` resamples give the intervals: by seed when every rung has two or more seeds, else by
    residual when there are more rungs than coefficients; otherwise there is no interval.
    """
    x = np.asarray(x, dtype=float)
    means = np.array([np.mean(seeds) for seeds in losses])
    law, _ = fit_power_law(x, means)
    bounds = Bounds.for_losses(means)
    rng = np.random.default_rng(seed)
    if n_boot <= 0:
        return LadderFit(law, bounds, "none", np.empty((0, 3)))
    if all(len(seeds) >= 2 for seeds in losses):
        method, resampled_means = "seeds", _seed_resamples(losses, n_boot, rng)
        dof = sum(len(seeds) - 1 for seeds in losses)
    elif len(x) > 3:
        method, resampled_means = "residuals", _residual_resamples(x, means, law, n_boot, rng)
        dof = len(x) - 3
    else:
        return LadderFit(law, bounds, "none", np.empty((0, 3)))
    thetas, _ = fit_laws(x, resampled_means, bounds)
    point = np.array([math.log(law.A), law.alpha, math.log(max(law.E, 1e-300))])
    quantile = 1 - (1 - LEVEL) / 2
    stretch = stats.t.ppf(quantile, dof) / stats.norm.ppf(quantile)
    stretched = np.clip(point + stretch * (thetas - point), bounds.lower, bounds.upper)
    return LadderFit(law, bounds, method, stretched, dof)


def _seed_resamples(losses: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, rungs) means of seeds drawn with replacement within each rung."""
    columns = []
    for seeds in losses:
        seeds = np.asarray(seeds, dtype=float)
        mean, count = seeds.mean(), len(seeds)
        adjusted = mean + (seeds - mean) * math.sqrt(count / (count - 1))
        drawn = adjusted[rng.integers(0, count, size=(n_boot, count))].mean(1)
        columns.append(np.maximum(drawn, mean * 1e-6))  # inflation must not make a loss negative
    return np.stack(columns, axis=1)


def _residual_resamples(
    x: np.ndarray, means: np.ndarray, law: PowerLaw, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_boot, rungs) fitted curves times resampled log residuals (one seed: no seed noise)."""
    log_fit = np.log(law(x))
    residuals = (np.log(means) - log_fit) * math.sqrt(len(x) / (len(x) - 3))
    return np.exp(log_fit + rng.choice(residuals, size=(n_boot, len(x))))
