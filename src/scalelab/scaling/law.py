"""Fit a saturating power law L(N) = E + A·N^(−α) robustly, with bootstrap intervals.

Following Hoffmann et al. 2022 ("Chinchilla", §3.3 and appendix D.2): minimise a Huber loss
(δ = 1e-3) between log predictions and log observations, with log L̂ = LSE(a − α·log N, e),
E = exp(e), A = exp(a), from a grid of initialisations, using L-BFGS-B (scipy). The fit is
hand-written because no maintained library fits this law with these safeguards; scipy does the
optimisation.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

HUBER_DELTA = 1e-3  # on log loss (Hoffmann 2022, §3.3)


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = E + A·x^(−α); x is a parameter count or a FLOP count."""

    E: float
    A: float
    alpha: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.E + self.A * np.power(np.asarray(x, dtype=float), -self.alpha)


def _objective(theta: np.ndarray, log_x: np.ndarray, log_y: np.ndarray) -> tuple[float, np.ndarray]:
    """Huber loss of log residuals and its gradient in θ = (a, α, e).

    The two-term LSE is numpy's `logaddexp`: scipy's general `logsumexp` cost ~80% of each
    evaluation (array-API dispatch), and the bootstrap evaluates this ~10⁴ times per fit.
    """
    a, alpha, e = theta
    power = a - alpha * log_x
    log_pred = np.logaddexp(power, e)
    residual = log_pred - log_y
    w_power, w_floor = np.exp(power - log_pred), np.exp(e - log_pred)  # ∂ log_pred / ∂ (term)
    psi = np.clip(residual, -HUBER_DELTA, HUBER_DELTA)  # Huber's derivative
    grad = np.array([(psi * w_power).sum(), -(psi * w_power * log_x).sum(), (psi * w_floor).sum()])
    return float(huber(HUBER_DELTA, residual).sum()), grad


def _initial_guesses(log_x: np.ndarray, log_y: np.ndarray) -> list[np.ndarray]:
    smallest = np.argmin(log_x)
    guesses = []
    for alpha, floor in itertools.product((0.1, 0.3, 0.6, 1.0), (0.05, 0.5, 0.9)):
        e = log_y.min() + math.log(floor)
        gap = max(math.exp(log_y[smallest]) - math.exp(e), 1e-6)
        guesses.append(np.array([math.log(gap) + alpha * log_x[smallest], alpha, e]))
    return guesses


def fit_power_law(
    x: np.ndarray, y: np.ndarray, starts: list[np.ndarray] | None = None
) -> tuple[PowerLaw, float]:
    """Best fit of `y ≈ E + A·x^(−α)` over several starts; returns the law and its objective."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x)) < 3:
        raise ValueError(f"a 3-parameter law needs at least 3 distinct sizes, got {len(np.unique(x))}")
    if np.any(y <= 0) or np.any(x <= 0):
        raise ValueError("sizes and losses must be positive to fit in log space")
    log_x, log_y = np.log(x), np.log(y)
    bounds = [(-30.0, 80.0), (0.0, 3.0), (-30.0, float(log_y.max()) + 1.0)]
    best = None
    for start in starts or _initial_guesses(log_x, log_y):
        result = minimize(_objective, start, args=(log_x, log_y), jac=True, method="L-BFGS-B", bounds=bounds)
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    a, alpha, e = best.x
    return PowerLaw(E=math.exp(e), A=math.exp(a), alpha=float(alpha)), float(best.fun)


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval."""

    low: float
    high: float


@dataclass(frozen=True)
class BootstrapFit:
    """The point fit, percentile intervals for its coefficients, and the resampled laws."""

    law: PowerLaw
    alpha: Interval
    E: Interval
    A: Interval
    samples: list[PowerLaw]

    def band(self, x: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise `level` band of the fitted curve over `x`."""
        curves = np.stack([law(x) for law in self.samples])
        tail = (1 - level) / 2 * 100
        return np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, axis=0)


def bootstrap_fit(
    x: np.ndarray, y: np.ndarray, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> BootstrapFit | None:
    """Fit, then refit on `n_boot` residual-bootstrap resamples for percentile intervals.

    Residuals are taken in log space, where the fit is made, and inflated by sqrt(n / (n − 3))
    for the three fitted coefficients; every resample keeps every size (and every seed), so
    a ladder with few rungs never degenerates. Returns None when there are no more points than
    coefficients: the fit is then exact and its uncertainty unknown.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    law, _ = fit_power_law(x, y)
    if len(x) <= 3:
        return None
    start = np.array([math.log(law.A), law.alpha, math.log(max(law.E, 1e-300))])
    log_fit = np.log(law(x))
    residuals = (np.log(y) - log_fit) * math.sqrt(len(x) / (len(x) - 3))
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        resampled = np.exp(log_fit + rng.choice(residuals, size=len(x)))
        samples.append(fit_power_law(x, resampled, starts=[start])[0])
    tail = (1 - level) / 2 * 100

    def interval(values: list[float]) -> Interval:
        low, high = np.percentile(values, [tail, 100 - tail])
        return Interval(float(low), float(high))

    return BootstrapFit(
        law=law,
        alpha=interval([s.alpha for s in samples]),
        E=interval([s.E for s in samples]),
        A=interval([s.A for s in samples]),
        samples=samples,
    )
