"""Fit a saturating power law L(x) = E + A·x^(−α) to a ladder's losses, with honest intervals.

The fit follows Hoffmann et al. 2022 ("Chinchilla", approach 3) as replicated by Besiroglu et al.
2024: log L̂ = LSE(a − α·log x, e) with E = exp(e), A = exp(a), fitted in log space from a grid
of starting points, the best kept. Two choices differ from Chinchilla's, as the replication
advises: the objective is the *summed* squared log residual (least squares: every rung's mean
counts, where Huber with δ = 1e-3 acted like L1 on 5 points and ignored two rungs), and the
optimisation runs to tight tolerances.

The optimiser is a box-constrained Levenberg–Marquardt written here, batched over every
(resample × start) problem at once: scipy fits one problem per call (~12 ms with tight
tolerances), and a bootstrap of 1000 resamples refitted from 15 starts each would take minutes;
batched, it takes about a second. `tests/scaling/test_law.py` checks it reaches scipy's minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA_BOUNDS = (0.0, 3.0)
FLOOR_RANGE = 1e3  # E may go down to (lowest loss) / 1000: lower than that is "no floor seen"
START_ALPHAS = (0.05, 0.2, 0.5, 1.0, 2.0)
START_FLOORS = (0.0, 0.5, 0.9)  # E as a fraction of the lowest loss (0: at its lower bound)
ON_BOUND = 1e-3  # a coefficient this close to a bound (α; log E) is "on the bound"


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = E + A·x^(−α); x is a parameter count or a FLOP count."""

    E: float
    A: float
    alpha: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.E + self.A * np.power(np.asarray(x, dtype=float), -self.alpha)


@dataclass(frozen=True)
class Bounds:
    """Box for θ = (a, α, e); e's range comes from the losses being fitted."""

    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def for_losses(cls, y: np.ndarray) -> Bounds:
        log_min, log_max = float(np.log(y.min())), float(np.log(y.max()))
        return cls(
            lower=np.array([-30.0, ALPHA_BOUNDS[0], log_min - math.log(FLOOR_RANGE)]),
            upper=np.array([80.0, ALPHA_BOUNDS[1], log_max]),
        )

    def touched(self, law: PowerLaw) -> list[str]:
        """Which of α and E sit on a bound of the box."""
        hits = []
        if min(abs(law.alpha - self.lower[1]), abs(law.alpha - self.upper[1])) < ON_BOUND:
            hits.append("alpha")
        e = math.log(max(law.E, 1e-300))
        if min(abs(e - self.lower[2]), abs(e - self.upper[2])) < ON_BOUND:
            hits.append("E")
        return hits


def _residuals(theta: np.ndarray, log_x: np.ndarray, log_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log residuals (B, n) of B laws θ (B, 3) and their Jacobian (B, n, 3)."""
    a, alpha, e = theta[:, :1], theta[:, 1:2], theta[:, 2:]
    power = a - alpha * log_x  # (B, n): log of A·x^(−α)
    log_pred = np.logaddexp(power, e)
    w_power, w_floor = np.exp(power - log_pred), np.exp(e - log_pred)  # ∂ log_pred / ∂ (term)
    jac = np.stack([w_power, -w_power * log_x, w_floor], axis=-1)
    return log_pred - log_y, jac


def _least_squares(
    theta: np.ndarray, log_x: np.ndarray, log_y: np.ndarray, bounds: Bounds, max_iter: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise Σ (log L̂ − log y)² for each row of `theta` (B, 3) against `log_y` (B, n).

    Levenberg–Marquardt with Marquardt's diagonal scaling, steps clipped into the box (as λ
    grows the step becomes a projected scaled-gradient step, so it stops only where no feasible
    direction lowers the cost). Returns the fitted θ (B, 3) and the costs (B,).
    """
    theta = np.clip(theta, bounds.lower, bounds.upper)
    r, jac = _residuals(theta, log_x, log_y)
    cost = (r * r).sum(1)
    damping = np.full(len(theta), 1e-3)
    active = np.arange(len(theta))
    for _ in range(max_iter):
        if len(active) == 0:
            break
        j, res, here = jac[active], r[active], theta[active]
        gradient = np.einsum("bni,bn->bi", j, res)
        # A coefficient on a bound whose descent direction leads out of the box stays put: the
        # step is solved in the free coefficients only (projected Newton), else LM crawls.
        pinned = ((here <= bounds.lower + 1e-12) & (gradient > 0)) | (
            (here >= bounds.upper - 1e-12) & (gradient < 0)
        )
        free = (~pinned).astype(float)
        gradient = gradient * free
        hessian = np.einsum("bni,bnj->bij", j, j) * free[:, :, None] * free[:, None, :]
        diag = np.einsum("bii->bi", hessian) + 1e-12
        damped = (
            hessian
            + (damping[active][:, None] * diag)[:, :, None] * np.eye(3)
            + pinned[:, :, None] * np.eye(3)
        )
        step = -np.linalg.solve(damped, gradient[..., None])[..., 0]
        trial = np.clip(here + step, bounds.lower, bounds.upper)
        r_new, jac_new = _residuals(trial, log_x, log_y[active])
        cost_new = (r_new * r_new).sum(1)
        better = cost_new < cost[active]
        gain = np.where(better, cost[active] - cost_new, 0.0)
        won = active[better]
        theta[won], r[won], jac[won], cost[won] = (
            trial[better],
            r_new[better],
            jac_new[better],
            cost_new[better],
        )
        damping[active] = np.where(better, damping[active] / 3, damping[active] * 4)
        moved = np.abs(step).max(1)
        done = (better & (gain <= 1e-15 * (1 + cost[active]))) | (damping[active] > 1e12) | (moved < 1e-12)
        active = active[~done]
    return theta, cost


def _starts(log_x: np.ndarray, log_y: np.ndarray, bounds: Bounds) -> np.ndarray:
    """The grid of starting points (S, 3) for one data set: every α × floor pair, with A set so
    the curve passes through the smallest rung."""
    smallest, y = int(np.argmin(log_x)), np.exp(log_y)
    starts = []
    for alpha in START_ALPHAS:
        for floor in START_FLOORS:
            e = max(math.log(y.min()) + math.log(floor) if floor else -np.inf, bounds.lower[2])
            gap = max(y[smallest] - math.exp(e), 1e-6 * y[smallest])
            starts.append([math.log(gap) + alpha * log_x[smallest], alpha, e])
    return np.array(starts)


def fit_laws(x: np.ndarray, ys: np.ndarray, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """Fit one law to each row of `ys` (B, n) at sizes `x` (n,), each from the full start grid.

    Returns θ = (a, α, e) per row (B, 3) and the summed squared log residual per row (B,).
    """
    log_x, log_ys = np.log(np.asarray(x, dtype=float)), np.log(np.atleast_2d(ys))
    starts = np.stack([_starts(log_x, row, bounds) for row in log_ys])  # (B, S, 3)
    b, s = starts.shape[:2]
    theta, cost = _least_squares(starts.reshape(b * s, 3), log_x, np.repeat(log_ys, s, axis=0), bounds)
    best = cost.reshape(b, s).argmin(1)
    return theta.reshape(b, s, 3)[np.arange(b), best], cost.reshape(b, s)[np.arange(b), best]


def _law(theta: np.ndarray) -> PowerLaw:
    return PowerLaw(E=math.exp(theta[2]), A=math.exp(theta[0]), alpha=float(theta[1]))


def fit_power_law(x: np.ndarray, y: np.ndarray) -> tuple[PowerLaw, float]:
    """Least-squares fit of `y ≈ E + A·x^(−α)` in log space; returns the law and its cost."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x)) < 3:
        raise ValueError(f"a 3-parameter law needs at least 3 distinct sizes, got {len(np.unique(x))}")
    if np.any(y <= 0) or np.any(x <= 0):
        raise ValueError("sizes and losses must be positive to fit in log space")
    theta, cost = fit_laws(x, y[None], Bounds.for_losses(y))
    return _law(theta[0]), float(cost[0])
