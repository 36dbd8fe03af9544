"""IsoFLOP profiles: Chinchilla's approach 2, the compute-optimal model size per budget.

Hoffmann et al. 2022 (§3.2): train a range of model sizes N at each of several fixed compute
budgets C; for each budget, fit a parabola to the loss against log N and take its minimum as
N_opt(C); then fit the power laws N_opt = G·C^a and D_opt = C/(k·N_opt) ∝ C^b (b = 1 − a with
k·N·D FLOPs, k = 6 as in Kaplan's 6ND). The parabola is fitted to log L against log N, the
scale the law is fitted in elsewhere in the lab; the minimum is `−p1 / (2·p2)`.

Intervals are bootstrap percentiles: each resample draws runs with replacement within each
(budget, size) cell, so a cell's seeds are resampled and every cell stays (with one run per
cell, the runs of each budget are drawn from all of that budget's runs), then the parabolas
and the power law are refitted; as for the joint law, a cell's runs are first spread by
sqrt(S / (S − 1)) around their mean, the variance a resample of S runs otherwise loses.
A profile whose parabola opens downwards has no minimum, and one whose minimum lies outside
the sizes trained is extrapolated: both are flagged, as is a study of fewer than 3 budgets.
The held-out check fits without the largest budget and predicts its N_opt and its optimal
loss (a power law in C fitted to the other budgets' minima); a prediction no better than the
next budget down's optimal loss is flagged.

Hand-written because no maintained library fits IsoFLOP profiles: numpy does the least squares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalelab.scaling.joint import inflated

LEVEL = 0.95
MIN_SIZES = 3  # a parabola needs three sizes per budget
MIN_BUDGETS = 3  # N_opt ∝ C^a needs three budgets to be more than a line through two points


@dataclass(frozen=True)
class Profile:
    """One budget's IsoFLOP profile: its parabola in log N and where it is lowest."""

    compute: float
    sizes: np.ndarray  # the distinct N trained at this budget
    coefficients: np.ndarray  # log L = p0 + p1·x + p2·x², x = log N
    n_opt: float  # nan when the parabola has no minimum
    loss_opt: float

    @property
    def has_minimum(self) -> bool:
        return bool(self.coefficients[2] > 0)

    @property
    def inside(self) -> bool:
        """Whether the minimum lies within the sizes trained (else it is extrapolated)."""
        return self.has_minimum and bool(self.sizes.min() <= self.n_opt <= self.sizes.max())


def profile(compute: float, params: np.ndarray, loss: np.ndarray) -> Profile:
    """Fit one budget's parabola of log loss in log N (several runs per size allowed)."""
    sizes = np.unique(params)
    if len(sizes) < MIN_SIZES:
        raise ValueError(
            f"the budget {compute:.3g} has {len(sizes)} model sizes; a profile needs {MIN_SIZES}"
        )
    x, y = np.log(params), np.log(loss)
    p2, p1, p0 = np.polyfit(x, y, 2)
    coefficients = np.array([p0, p1, p2])
    if p2 <= 0:
        return Profile(compute, sizes, coefficients, math.nan, math.nan)
    x_opt = -p1 / (2 * p2)
    return Profile(
        compute, sizes, coefficients, float(np.exp(x_opt)), float(np.exp(p0 + p1 * x_opt + p2 * x_opt**2))
    )


def _power_law(compute: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """(exponent, coefficient) of values = coefficient·compute^exponent, least squares in logs."""
    slope, intercept = np.polyfit(np.log(compute), np.log(values), 1)
    return float(slope), float(np.exp(intercept))


@dataclass
class IsoFlopFit:
    """The profiles, the fitted N_opt ∝ C^a (and D_opt ∝ C^b), intervals and flags."""

    profiles: list[Profile]
    a: float
    g: float  # N_opt = g·C^a
    flops_per_param_sample: float
    resampled_a: np.ndarray = field(default_factory=lambda: np.empty(0))
    # each resample's N_opt per budget (rows: resamples, columns: profiles; nan: no minimum)
    resampled_n_opt: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    unit: str = "samples"  # what D counts: training samples, or a language model's tokens
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    holdout: dict[str, Any] | None = None

    @property
    def b(self) -> float:
        return 1.0 - self.a

    def n_opt(self, compute: float | np.ndarray) -> np.ndarray:
        return self.g * np.asarray(compute, dtype=float) ** self.a

    def d_opt(self, compute: float | np.ndarray) -> np.ndarray:
        return np.asarray(compute, dtype=float) / (self.flops_per_param_sample * self.n_opt(compute))

    def interval(self, level: float = LEVEL) -> tuple[float, float] | None:
        """Percentile interval of a (b's is 1 minus it, reversed); None without resamples."""
        if not len(self.resampled_a):
            return None
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(self.resampled_a, [tail, 100 - tail])
        return float(low), float(high)

    def n_opt_interval(self, index: int, level: float = LEVEL) -> tuple[float, float] | None:
        """Percentile interval of profile `index`'s N_opt; None without resamples that found one."""
        found = self.resampled_n_opt[:, index] if self.resampled_n_opt.size else np.empty(0)
        found = found[np.isfinite(found)]
        if not len(found):
            return None
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(found, [tail, 100 - tail])
        return float(low), float(high)


def _cells(compute: np.ndarray, params: np.ndarray) -> list[np.ndarray]:
    keys = np.stack([compute, params], axis=1)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    return [np.flatnonzero(inverse.ravel() == i) for i in range(inverse.max() + 1)]


def _fit_profiles(compute: np.ndarray, params: np.ndarray, loss: np.ndarray) -> list[Profile]:
    return [profile(float(c), params[compute == c], loss[compute == c]) for c in np.unique(compute)]


def _exponent(profiles: list[Profile]) -> tuple[float, float]:
    usable = [p for p in profiles if p.has_minimum]
    if len(usable) < 2:
        raise ValueError("fewer than 2 budgets have a minimum: no N_opt ∝ C^a")
    return _power_law(np.array([p.compute for p in usable]), np.array([p.n_opt for p in usable]))


def fit_isoflop(
    compute: np.ndarray,
    params: np.ndarray,
    loss: np.ndarray,
    flops_per_param_sample: float = 6.0,
    resamples: int = 1000,
    seed: int = 0,
    unit: str = "samples",
) -> IsoFlopFit:
    """Fit approach 2 to runs, each with its budget `compute` (the nominal C shared by the runs
    of one profile), its parameter count and its loss; D counts `unit` (samples or tokens)."""
    compute, params, loss = (np.asarray(v, dtype=float) for v in (compute, params, loss))
    if not (len(compute) == len(params) == len(loss)):
        raise ValueError("compute, params and loss must have one value per run")
    if not np.all(np.isfinite([compute, params, loss])) or np.any(np.array([compute, params, loss]) <= 0):
        raise ValueError("compute, params and loss must be positive numbers")
    profiles = _fit_profiles(compute, params, loss)
    if sum(p.has_minimum for p in profiles) < 2:  # the profiles, and why there is no a
        fit = IsoFlopFit(profiles, math.nan, math.nan, flops_per_param_sample, unit=unit)
        fit.flags.append("no_exponent")
        fit.reasons.append("fewer than 2 budgets have a minimum: no N_opt ∝ C^a")
        _judge(fit)
        return fit
    a, g = _exponent(profiles)
    fit = IsoFlopFit(profiles, a, g, flops_per_param_sample, unit=unit)
    fit.resampled_a, fit.resampled_n_opt = _bootstrap(compute, params, loss, resamples, seed)
    fit.holdout = _holdout(profiles)
    _judge(fit)
    return fit


def _bootstrap(
    compute: np.ndarray, params: np.ndarray, loss: np.ndarray, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each resample's exponent a and its N_opt per budget (nan where its parabola has no minimum)."""
    rng = np.random.default_rng(seed)
    cells = _cells(compute, params)
    single = all(len(cell) == 1 for cell in cells)
    groups = [np.flatnonzero(compute == c) for c in np.unique(compute)]
    spread = loss if single else np.exp(inflated(np.log(loss), cells))
    found, optima = [], []
    for _ in range(resamples):
        if single:  # one run per cell: draw each budget's runs from all of that budget's runs
            rows = np.concatenate([rng.choice(g, size=len(g)) for g in groups])
        else:
            rows = np.concatenate([rng.choice(cell, size=len(cell)) for cell in cells])
        try:
            profiles = _fit_profiles(compute[rows], params[rows], spread[rows])
            optima.append([p.n_opt if p.has_minimum else math.nan for p in profiles])
            found.append(_exponent(profiles)[0])
        except (ValueError, np.linalg.LinAlgError):
            continue  # a resample with too few sizes in a budget, or no minimum: not a fit
    return np.array(found), np.array(optima, dtype=float).reshape(len(optima), len(groups))


def _judge(fit: IsoFlopFit) -> None:
    if len(fit.profiles) < MIN_BUDGETS:
        fit.flags.append("too_few_budgets")
        fit.reasons.append(f"{len(fit.profiles)} compute budgets; N_opt ∝ C^a needs {MIN_BUDGETS} or more")
    if flat := [p for p in fit.profiles if not p.has_minimum]:
        fit.flags.append("no_minimum")
        budgets = ", ".join(f"{p.compute:.3g}" for p in flat)
        fit.reasons.append(f"the profile of budget {budgets} has no minimum: train larger and smaller sizes")
    if outside := [p for p in fit.profiles if p.has_minimum and not p.inside]:
        fit.flags.append("minimum_outside")
        budgets = ", ".join(f"{p.compute:.3g}" for p in outside)
        fit.reasons.append(
            f"the minimum of budget {budgets} lies outside the sizes trained: extend the ladder past it"
        )
    if (h := fit.holdout) and not h["beats_persistence"]:
        fit.flags.append("worse_than_persistence")
        fit.reasons.append(
            f"held out, the largest budget's optimal loss is predicted {h['loss_opt_rel_error']:.1%} "
            f"off, no better than the next budget down's ({h['persistence_rel_error']:.1%})"
        )


def _holdout(profiles: list[Profile]) -> dict[str, Any] | None:
    """Fit without the largest budget; predict its N_opt and its optimal loss."""
    usable = [p for p in profiles if p.has_minimum]
    if len(usable) < MIN_BUDGETS or usable[-1] is not profiles[-1]:
        return None
    largest, rest = usable[-1], usable[:-1]
    persistence = abs(rest[-1].loss_opt - largest.loss_opt) / largest.loss_opt
    a, g = _power_law(np.array([p.compute for p in rest]), np.array([p.n_opt for p in rest]))
    gamma, h = _power_law(np.array([p.compute for p in rest]), np.array([p.loss_opt for p in rest]))
    n_pred, loss_pred = g * largest.compute**a, h * largest.compute**gamma
    return {
        "compute": largest.compute,
        "predicted_n_opt": n_pred,
        "observed_n_opt": largest.n_opt,
        "n_opt_rel_error": abs(n_pred - largest.n_opt) / largest.n_opt,
        "predicted_loss_opt": loss_pred,
        "observed_loss_opt": largest.loss_opt,
        "loss_opt_rel_error": abs(loss_pred - largest.loss_opt) / largest.loss_opt,
        "persistence_rel_error": persistence,  # the next budget down's optimal loss, as the guess
        "beats_persistence": bool(abs(loss_pred - largest.loss_opt) / largest.loss_opt < persistence),
    }


def isoflop_summary(fit: IsoFlopFit) -> dict[str, Any]:
    """The fit as plain numbers: a and b with 95% intervals, each budget's optimum, the flags."""
    interval = fit.interval()
    found = math.isfinite(fit.a)
    out: dict[str, Any] = {
        "a": fit.a if found else None,
        "a_ci_low": interval[0] if interval else None,
        "a_ci_high": interval[1] if interval else None,
        "b": fit.b if found else None,
        "b_ci_low": 1 - interval[1] if interval else None,
        "b_ci_high": 1 - interval[0] if interval else None,
        "resamples": len(fit.resampled_a),
        "flops_per_param_sample": fit.flops_per_param_sample,
        "unit": fit.unit,
        "credible": not fit.flags,
        "flags": fit.flags,
        "reasons": fit.reasons,
        "budgets": [],
        "holdout": fit.holdout,
    }
    ratio = f"{fit.unit}_per_param"  # samples_per_param, or tokens_per_param for a language model
    for index, p in enumerate(fit.profiles):
        d_opt = p.compute / (fit.flops_per_param_sample * p.n_opt) if p.has_minimum else None
        n_ci = fit.n_opt_interval(index)
        # D/N = C / (k·N²) falls as N_opt rises: its interval is N_opt's, reversed
        k_n2 = [fit.flops_per_param_sample * n * n for n in n_ci] if n_ci else None
        out["budgets"].append(
            {
                "compute": p.compute,
                "sizes": len(p.sizes),
                "n_opt": p.n_opt if p.has_minimum else None,
                "n_opt_ci_low": n_ci[0] if n_ci else None,
                "n_opt_ci_high": n_ci[1] if n_ci else None,
                "d_opt": d_opt,
                ratio: d_opt / p.n_opt if d_opt else None,
                f"{ratio}_ci_low": p.compute / k_n2[1] if k_n2 else None,
                f"{ratio}_ci_high": p.compute / k_n2[0] if k_n2 else None,
                "loss_opt": p.loss_opt if p.has_minimum else None,
                "inside": p.inside,
            }
        )
    return out
