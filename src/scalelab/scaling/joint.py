"""The joint law L(N, D) = E + A·N^(−α) + B·D^(−β), fitted as Chinchilla's approach 3.

Hoffmann et al. 2022 (§3.3, appendix D.2), as replicated by Besiroglu et al. 2024: the law is
fitted in log space, log L̂ = LSE(a − α·log N, b − β·log D, e) with A = exp(a), B = exp(b),
E = exp(e), by minimising the summed Huber loss (δ = 1e-3) of the log residuals with L-BFGS
from a grid of starting points (α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1.5},
a, b ∈ {0, 5, …, 25}), the best result kept; the optimiser runs to tight tolerances, as the
replication found Chinchilla's stopped early. One departure, for speed: the objective is
evaluated at all 5,400 grid points at once and L-BFGS runs from the best `starts` of them
(Hoffmann ran it from every point; on the planted laws in tests/scaling/test_joint.py the best
few reach the same minimum).

Intervals are bootstrap percentiles: each resample draws runs with replacement within each
(N, D) cell, so a cell's seeds are resampled and every cell stays in the fit (with one run per
cell, runs are drawn from all runs, as Besiroglu et al. did), and is refitted from its own best
grid points. For a budget C = k·N·D (k = 6 for Kaplan's 6ND), the law's compute-optimal
allocation is N_opt = G·(C/k)^a and D_opt = (C/k)^b / G with a = β/(α+β), b = α/(α+β),
G = (αA/(βB))^(1/(α+β)) (Hoffmann et al., eq. 4).

Hand-written because no maintained library fits this law: scipy supplies the optimiser.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

HUBER_DELTA = 1e-3
GRID = {  # Hoffmann et al. 2022, appendix D.2
    "a": np.arange(0.0, 25.1, 5.0),
    "b": np.arange(0.0, 25.1, 5.0),
    "e": np.arange(-1.0, 1.51, 0.5),
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
}
NAMES = ("a", "b", "e", "alpha", "beta")  # θ: A = exp(a), B = exp(b), E = exp(e)
COEFFICIENTS = ("A", "B", "E", "alpha", "beta")  # what θ's bounds mean, in the law's own terms
BOUNDS = [(-30.0, 80.0), (-30.0, 80.0), (-10.0, 10.0), (0.0, 5.0), (0.0, 5.0)]
ON_BOUND = 1e-3
LEVEL = 0.95


@dataclass(frozen=True)
class JointLaw:
    """L(N, D) = E + A·N^(−α) + B·D^(−β)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __call__(self, n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n**-self.alpha + self.B * d**-self.beta

    @property
    def exponents(self) -> tuple[float, float]:
        """(a, b): N_opt ∝ C^a and D_opt ∝ C^b along the compute-optimal frontier."""
        total = self.alpha + self.beta
        return self.beta / total, self.alpha / total

    def optimal(self, compute: float, flops_per_param_sample: float = 6.0) -> tuple[float, float]:
        """(N_opt, D_opt) minimising L under compute = k·N·D (Hoffmann et al., eq. 4)."""
        a, b = self.exponents
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        budget = compute / flops_per_param_sample
        return g * budget**a, budget**b / g


def _law(theta: np.ndarray) -> JointLaw:
    a, b, e, alpha, beta = (float(v) for v in theta)
    return JointLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    small = np.abs(r) <= delta
    return np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))


# The three terms are summed as plain exponentials, not through logaddexp: the box keeps every
# exponent below 80 + (the floor's e >= -10 keeps the sum above 0), and this is ~5x faster.
def _objective(
    theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_y: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Summed Huber loss of the log residuals and its gradient in θ."""
    a, b, e, alpha, beta = theta
    model, data, floor = np.exp(a - alpha * log_n), np.exp(b - beta * log_d), math.exp(e)
    total = model + data + floor
    r = np.log(total) - log_y
    dr = np.clip(r, -delta, delta) / total  # Huber's derivative times ∂ log(total) / ∂ total
    gm, gd = dr * model, dr * data
    grad = np.array([gm.sum(), gd.sum(), dr.sum() * floor, -(gm @ log_n), -(gd @ log_d)])
    return float(_huber(r, delta).sum()), grad


def _grid_costs(log_n: np.ndarray, log_d: np.ndarray, log_y: np.ndarray, delta: float) -> np.ndarray:
    """The objective at every grid point (G,), in GRID_POINTS' order, evaluated at once."""
    model = np.exp(GRID["a"][:, None, None] - GRID["alpha"][None, :, None] * log_n)  # (a, α, rows)
    data = np.exp(GRID["b"][:, None, None] - GRID["beta"][None, :, None] * log_d)  # (b, β, rows)
    total = (
        model[:, None, None, :, None]
        + data[None, :, None, None, :]
        + np.exp(GRID["e"])[None, None, :, None, None, None]
    )
    return _huber(np.log(total) - log_y, delta).reshape(len(GRID_POINTS), -1).sum(-1)


GRID_POINTS = np.array(list(itertools.product(*(GRID[name] for name in NAMES))))


def _fit(
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_y: np.ndarray,
    starts: int,
    delta: float,
    also: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """θ and cost of the best L-BFGS-B run from the `starts` best grid points (and `also`)."""
    best_theta, best_cost = GRID_POINTS[0], math.inf
    grid = GRID_POINTS[np.argsort(_grid_costs(log_n, log_d, log_y, delta))[:starts]]
    for start in grid if also is None else [also, *grid]:
        result = minimize(
            _objective,
            start,
            args=(log_n, log_d, log_y, delta),
            jac=True,
            method="L-BFGS-B",
            bounds=BOUNDS,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12},
        )
        if result.fun < best_cost:
            best_theta, best_cost = result.x, float(result.fun)
    return np.asarray(best_theta), best_cost


@dataclass(frozen=True)
class JointFit:
    """The law fitted to all runs, and the laws refitted to each bootstrap resample."""

    law: JointLaw
    theta: np.ndarray
    resampled: np.ndarray  # (R, 5): θ of each resample's law
    method: str  # "runs within cells" or "runs"
    rows: int
    cells: int

    def samples(self, name: str) -> np.ndarray:
        """The bootstrap distribution of E, A, B, alpha, beta, a (N_opt's exponent) or b."""
        t = self.resampled
        values = {
            "E": np.exp(t[:, 2]),
            "A": np.exp(t[:, 0]),
            "B": np.exp(t[:, 1]),
            "alpha": t[:, 3],
            "beta": t[:, 4],
        }
        with np.errstate(invalid="ignore", divide="ignore"):
            values["a"] = t[:, 4] / (t[:, 3] + t[:, 4])
            values["b"] = t[:, 3] / (t[:, 3] + t[:, 4])
        return values[name]

    def interval(self, name: str, level: float = LEVEL) -> tuple[float, float] | None:
        """Percentile interval of one estimate; None without resamples."""
        if not len(self.resampled):
            return None
        tail = 100 * (1 - level) / 2
        low, high = np.nanpercentile(self.samples(name), [tail, 100 - tail])
        return float(low), float(high)

    def on_bound(self) -> list[str]:
        """Which of the five coefficients sit on a bound of the fit's box."""
        return [
            name
            for name, value, (low, high) in zip(COEFFICIENTS, self.theta, BOUNDS, strict=True)
            if min(value - low, high - value) < ON_BOUND
        ]

    def estimate(self, name: str) -> float:
        a, b = self.law.exponents
        return {
            "E": self.law.E,
            "A": self.law.A,
            "B": self.law.B,
            "alpha": self.law.alpha,
            "beta": self.law.beta,
            "a": a,
            "b": b,
        }[name]


def fit_joint(
    params: np.ndarray,
    data: np.ndarray,
    loss: np.ndarray,
    resamples: int = 1000,
    starts: int = 8,
    resample_starts: int = 1,
    delta: float = HUBER_DELTA,
    seed: int = 0,
) -> JointFit:
    """Fit L(N, D) to one row per run, with bootstrap intervals over `resamples` resamples."""
    n, d, y = (np.asarray(v, dtype=float) for v in (params, data, loss))
    if not (len(n) == len(d) == len(y)):
        raise ValueError("params, data and loss need one value per run each")
    if np.any(~np.isfinite(np.stack([n, d, y]))) or np.any(np.stack([n, d, y]) <= 0):
        raise ValueError("params, samples/tokens and loss must be positive finite numbers")
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2 or len(y) < 6:
        raise ValueError(
            f"a 5-coefficient law needs >= 6 runs over >= 2 model sizes and >= 2 data sizes; got "
            f"{len(y)} runs, {len(np.unique(n))} sizes, {len(np.unique(d))} data sizes"
        )
    with threadpool_limits(1, user_api="blas"):
        return _fit_all(np.log(n), np.log(d), np.log(y), resamples, starts, resample_starts, delta, seed)


def inflated(log_y: np.ndarray, cells: list[np.ndarray]) -> np.ndarray:
    """Log losses moved away from their cell's mean by sqrt(S / (S − 1)), S the cell's runs: a
    resampled mean of S runs otherwise has only (S − 1)/S of the true variance (Davison &
    Hinkley 1997, §3.3; as the ladder's intervals do)."""
    out = log_y.copy()
    for cell in cells:
        if len(cell) > 1:
            mean = log_y[cell].mean()
            out[cell] = mean + math.sqrt(len(cell) / (len(cell) - 1)) * (log_y[cell] - mean)
    return out


def _fit_all(
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_y: np.ndarray,
    resamples: int,
    starts: int,
    resample_starts: int,
    delta: float,
    seed: int,
) -> JointFit:
    """`fit_joint` on validated logs. L-BFGS-B calls BLAS on 5-vectors every iteration: with
    BLAS's own threads on a busy 2-core machine each call took ~3 ms instead of ~0.2 ms."""
    n, d = np.exp(log_n), np.exp(log_d)
    theta, _ = _fit(log_n, log_d, log_y, starts, delta)
    cells = [np.flatnonzero((n == cn) & (d == cd)) for cn, cd in dict.fromkeys(zip(n, d, strict=True))]
    within = any(len(c) > 1 for c in cells)
    spread = inflated(log_y, cells) if within else log_y
    rng = np.random.default_rng(seed)
    resampled = np.empty((resamples, 5))
    for i in range(resamples):
        if within:
            rows = np.concatenate([rng.choice(c, size=len(c)) for c in cells])
        else:
            rows = rng.integers(0, len(log_y), size=len(log_y))
        resampled[i], _ = _fit(log_n[rows], log_d[rows], spread[rows], resample_starts, delta, also=theta)
    return JointFit(
        law=_law(theta),
        theta=theta,
        resampled=resampled,
        method="runs within cells" if within else "runs",
        rows=len(log_y),
        cells=len(cells),
    )


ESTIMATES = ("E", "A", "B", "alpha", "beta")


def holdout_largest_data(params: np.ndarray, data: np.ndarray, loss: np.ndarray) -> dict[str, Any] | None:
    """Fit without the largest D and predict each model size there, against persistence (the
    same size's loss at the next D down); None with fewer than 3 data sizes, and no `cells` when
    no model size was trained at both of the two largest."""
    sizes = np.unique(data)
    if len(sizes) < 3:
        return None
    top, previous = sizes[-1], sizes[-2]
    rest = data < top
    law = fit_joint(params[rest], data[rest], loss[rest], resamples=0).law
    cells = []
    for n in np.unique(params[data == top]):
        below = (params == n) & (data == previous)
        if not below.any():
            continue
        observed = float(loss[(params == n) & (data == top)].mean())
        cells.append(
            {
                "params": int(n),
                "predicted": float(law(n, top)),
                "observed": observed,
                "persistence": float(loss[below].mean()),
            }
        )
    if not cells:  # no size to compare at both: the check cannot be made, and the verdict says so
        empty = {"rel_error": None, "persistence_rel_error": None, "beats_persistence": False}
        return {"data_size": int(top), "previous_data_size": int(previous), "cells": []} | empty
    error = float(np.mean([abs(c["predicted"] - c["observed"]) / c["observed"] for c in cells]))
    persistence = float(np.mean([abs(c["persistence"] - c["observed"]) / c["observed"] for c in cells]))
    return {
        "data_size": int(top),
        "previous_data_size": int(previous),
        "cells": cells,
        "rel_error": error,
        "persistence_rel_error": persistence,
        "beats_persistence": bool(error < persistence),
    }


def joint_verdict(fit: JointFit, holdout: dict[str, Any] | None) -> list[str]:
    """Reasons not to trust the joint law; empty when none applies."""
    reasons = [f"{name} is on a bound of the fit" for name in fit.on_bound()]
    if holdout is None:
        reasons.append("fewer than 3 training-set sizes: no held-out check of the law")
    elif not holdout["cells"]:
        reasons.append(
            f"no model size was trained at both D = {holdout['previous_data_size']:,} and "
            f"D = {holdout['data_size']:,}: no held-out check of the law"
        )
    elif not holdout["beats_persistence"]:
        reasons.append(
            f"held out, the largest training set is predicted {holdout['rel_error']:.1%} off, no "
            f"better than each size's loss at the next set down ({holdout['persistence_rel_error']:.1%})"
        )
    return reasons


def joint_summary(fit: JointFit, data_column: str) -> dict[str, Any]:
    """The JSON-ready report of a joint fit."""

    def entry(name: str) -> dict[str, float | None]:
        interval = fit.interval(name)
        return {
            "estimate": fit.estimate(name),
            "low": interval[0] if interval else None,
            "high": interval[1] if interval else None,
        }

    return {
        "law": "L(N, D) = E + A * N^-alpha + B * D^-beta",
        "data_column": data_column,
        "runs": fit.rows,
        "cells": fit.cells,
        "estimates": {name: entry(name) for name in ESTIMATES},
        "compute_optimal": {
            "N_opt_exponent": entry("a"),
            "D_opt_exponent": entry("b"),
            "meaning": "for compute C = k*N*D, N_opt ~ C^N_opt_exponent and D_opt ~ C^D_opt_exponent",
        },
        "on_bound": fit.on_bound(),
        "fit": {"objective": "huber on log loss", "delta": HUBER_DELTA, "grid_points": len(GRID_POINTS)},
        "bootstrap": {"resamples": len(fit.resampled), "method": fit.method, "level": LEVEL},
    }
