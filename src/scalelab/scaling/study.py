"""A scaling study: the runs of a sweep read back from their reports, averaged per rung, and the
laws fitted to the rung means, with their residuals, a held-out test and a verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelab import paths
from scalelab.readback import read_json
from scalelab.scaling.intervals import LEVEL, LadderFit, fit_ladder
from scalelab.scaling.isoflop import IsoFlopFit, fit_isoflop, isoflop_summary
from scalelab.scaling.joint import (
    JointFit,
    fit_joint,
    holdout_largest_data,
    joint_summary,
    joint_verdict,
)
from scalelab.scaling.verdict import Verdict, judge


@dataclass(frozen=True)
class RunRecord:
    """One trained and evaluated model of a sweep."""

    size: str
    seed: int
    run_id: str | None
    params: int
    flops: float
    loss: float  # test/loss
    acc: float  # test/acc
    seconds: float
    val_loss: float = float("nan")  # val/loss of the evaluated weights: how a champion is chosen
    converged: bool | None = None  # False: still improving when the epoch budget ran out
    trial_run_ids: tuple[str, ...] = ()  # a learning-rate search's trials, the chosen one included
    lr_edge: str | None = None  # "smallest"/"largest": the search chose a rate at its grid's edge
    train_samples: int | None = None  # its data.train_samples: the study's data axis (None: off)
    data: int | None = None  # how many training samples it had (D); None in older reports
    variant: str = ""  # the other settings a multirun swept (scalelab/variants.py)
    budget: float | None = None  # its data.compute_budget (FLOPs): the study's IsoFLOP axis
    tokens: int | None = None  # a language model's D in tokens (its windows x context)

    @property
    def key(self) -> str:
        return paths.run_key(self.size, self.seed, self.train_samples, self.variant)

    @property
    def error(self) -> float:
        return 1.0 - self.acc


TRAIN_KEYS = ("model/params", "train/flops", "train/seconds")
TEST_KEYS = ("test/loss", "test/acc")


def read_record(
    size: str, seed: int, reports: Path | None = None, train_samples: int | None = None, variant: str = ""
) -> RunRecord | None:
    """The record of `<size>-s<seed>` (`<size>-d<samples>-s<seed>`, in `variant`) from its report
    files, or None if any is missing."""
    reports = reports or paths.REPORTS
    trained_in = paths.train_reports(size, seed, reports, train_samples, variant)
    try:
        run = read_json(trained_in / "run.json", keys=("run_id",))
        trained = read_json(trained_in / "train_metrics.json", keys=TRAIN_KEYS)
        tested = read_json(
            paths.run_reports(size, seed, reports, train_samples, variant) / "metrics.json", keys=TEST_KEYS
        )
    except FileNotFoundError:
        return None
    converged = trained.get("train/converged")
    grid, chosen = run.get("lr_grid"), trained.get("lr_search/lr")
    lr_edge = None
    if grid and chosen is not None:
        lr_edge = "largest" if chosen == max(grid) else "smallest" if chosen == min(grid) else None
    return RunRecord(
        size=size,
        seed=seed,
        run_id=run.get("run_id"),
        params=int(trained["model/params"]),
        flops=float(trained["train/flops"]),
        loss=float(tested["test/loss"]),
        acc=float(tested["test/acc"]),
        seconds=float(trained["train/seconds"]),
        val_loss=float(trained.get("val/loss", "nan")),  # absent in reports of older versions
        converged=None if converged is None else bool(converged),
        trial_run_ids=tuple(run.get("trial_run_ids", ())),
        lr_edge=lr_edge,
        train_samples=train_samples,
        data=int(trained["data/train_samples"]) if "data/train_samples" in trained else None,
        variant=variant,
        budget=run.get("compute_budget"),
        tokens=int(trained["data/train_tokens"]) if "data/train_tokens" in trained else None,
    )


@dataclass(frozen=True)
class Rung:
    """The seeds of one size: their losses and accuracies, and their mean and spread."""

    size: str
    params: int
    flops: float  # mean over seeds: early stopping makes each seed's training its own length
    seeds: list[int]
    losses: np.ndarray
    errors: np.ndarray
    converged: list[bool | None]

    @property
    def mean_loss(self) -> float:
        return float(self.losses.mean())

    @property
    def loss_sd(self) -> float:
        """Standard deviation of the test loss over seeds; NaN with one seed."""
        return float(self.losses.std(ddof=1)) if len(self.losses) > 1 else float("nan")

    @property
    def log_sd(self) -> float:
        """Standard deviation of log test loss over seeds (the fit's units); NaN with one seed."""
        return float(np.log(self.losses).std(ddof=1)) if len(self.losses) > 1 else float("nan")


def rungs_of(records: list[RunRecord]) -> list[Rung]:
    """Group records by size, ordered by parameter count."""
    groups: dict[str, list[RunRecord]] = {}
    for record in sorted(records, key=lambda r: (r.params, r.seed)):
        groups.setdefault(record.size, []).append(record)
    return [
        Rung(
            size=size,
            params=runs[0].params,
            flops=float(np.mean([r.flops for r in runs])),
            seeds=[r.seed for r in runs],
            losses=np.array([r.loss for r in runs]),
            # A perfect score has zero error, which has no logarithm: floor it at 1e-4.
            errors=np.maximum(np.array([r.error for r in runs]), 1e-4),
            converged=[r.converged for r in runs],
        )
        for size, runs in groups.items()
    ]


@dataclass
class Study:
    """Runs of a sweep, which (size, seed) pairs are missing, the fits, and the verdict on them."""

    records: list[RunRecord]
    missing: list[str]
    fits: dict[str, LadderFit] = field(default_factory=dict)  # loss_vs_params, error_vs_params, loss_vs_flops
    holdout: dict[str, Any] | None = None  # the law fitted without the largest size, tested on it
    notes: list[str] = field(default_factory=list)
    verdict: Verdict = field(default_factory=Verdict)
    joint: JointFit | None = None  # L(N, D) over every run, when the study has a data axis
    joint_holdout: dict[str, Any] | None = None  # L(N, D) fitted without the largest D, tested on it
    isoflop: IsoFlopFit | None = None  # approach 2, when the study has compute budgets

    @property
    def budgets(self) -> list[float]:
        """The study's compute budgets (data.compute_budget), smallest first; [] without."""
        return sorted({r.budget for r in self.records if r.budget is not None})

    @property
    def data_sizes(self) -> list[int | None]:
        """The study's values of data.train_samples, smallest first (None, the whole split, last)."""
        return sorted({r.train_samples for r in self.records}, key=_whole_last)

    @property
    def ladder_records(self) -> list[RunRecord]:
        """The runs the size ladder is fitted to: those with the most training data (with
        compute budgets, those of the largest budget: its IsoFLOP profile)."""
        if budgets := self.budgets:
            return [r for r in self.records if r.budget == budgets[-1]]
        largest = self.data_sizes[-1] if self.records else None
        return [r for r in self.records if r.train_samples == largest]

    @property
    def rungs(self) -> list[Rung]:
        return rungs_of(self.ladder_records)

    def sizes(self) -> list[str]:
        return [r.size for r in self.rungs]

    def residuals(self) -> list[dict[str, Any]]:
        """Per rung: mean test loss, its seed spread, the law's value and the log residual."""
        fit = self.fits.get("loss_vs_params")
        rows = []
        for rung in self.rungs:
            predicted = float(fit.law(rung.params)) if fit else None
            rows.append(
                {
                    "size": rung.size,
                    "params": rung.params,
                    "seeds": len(rung.seeds),
                    "test/loss": rung.mean_loss,
                    "test/loss_sd": _number(rung.loss_sd),
                    "log_sd": _number(rung.log_sd),
                    "fit/test/loss": predicted,
                    "log_residual": float(np.log(rung.mean_loss / predicted)) if predicted else None,
                    "converged": None if None in rung.converged else all(rung.converged),
                }
            )
        return rows

    def joint_reasons(self) -> list[str]:
        """Reasons not to trust the joint law. With compute budgets no size trains twice on the
        same D, so its held-out test is the IsoFLOP one (the largest budget): bounds alone here."""
        if self.joint is None:
            return []
        if self.budgets:
            return [f"{name} is on a bound of the fit" for name in self.joint.on_bound()]
        return joint_verdict(self.joint, self.joint_holdout)

    def summary(self) -> dict[str, Any]:
        """What `reports/scaling.json` holds: DVC metrics, compared across experiments."""
        rungs = self.rungs
        largest = rungs[-1] if rungs else None
        ladder = self.ladder_records
        out: dict[str, Any] = {
            "credible": self.verdict.credible,
            "verdict": self.verdict.headline(),
            "reasons": self.verdict.reasons,
            "flags": self.verdict.flags,
            "runs": len(self.records),
            "missing_runs": len(self.missing),  # a number, so `dvc exp show` has a column for it
            "sizes": self.sizes(),
            "missing": self.missing,
        }
        if fit := self.fits.get("loss_vs_params"):
            out["bootstrap"] = {"method": fit.method, "resamples": fit.resamples, "dof": fit.dof}
        out |= {name: _fit_summary(fit) for name, fit in self.fits.items()}
        if "loss_vs_params" in out:
            residuals = [r["log_residual"] for r in self.residuals()]
            log_sds = [r.log_sd for r in rungs if len(r.seeds) > 1]
            out["loss_vs_params"]["rms_log_residual"] = float(np.sqrt(np.mean(np.square(residuals))))
            # the noise of one seed, pooled over rungs; a rung mean's is this / sqrt(seeds)
            out["loss_vs_params"]["seed_log_sd"] = (
                float(np.sqrt(np.mean(np.square(log_sds)))) if log_sds else None
            )
        out["rungs"] = self.residuals()
        out["holdout"] = self.holdout
        out["largest"] = (
            {
                "size": largest.size,
                "params": largest.params,
                "test/loss": largest.mean_loss,
                "test/acc": float(1 - np.mean([r.error for r in ladder if r.size == largest.size])),
            }
            if largest
            else None
        )
        if self.joint is not None:
            reasons = self.joint_reasons()
            verdict = {"credible": not reasons, "reasons": reasons}
            unit = self.isoflop.unit if self.isoflop is not None else "samples"  # what its D counts
            out["joint"] = verdict | joint_summary(self.joint, unit)
            out["joint"]["holdout"] = self.joint_holdout
        if self.isoflop is not None:
            out["isoflop"] = isoflop_summary(self.isoflop)
        out["notes"] = self.notes
        return out


def _whole_last(samples: int | None) -> float:
    return float("inf") if samples is None else float(samples)


def _number(value: float) -> float | None:
    return None if np.isnan(value) else value


def _fit_summary(fit: LadderFit) -> dict[str, Any]:
    """Coefficients and 95% intervals as plain numbers (null when unknown)."""
    law = fit.law
    out: dict[str, Any] = {"alpha": law.alpha, "E": law.E, "A": law.A}
    for name in ("alpha", "E", "A"):
        interval = fit.interval(name)
        out[f"{name}_ci_low"] = interval.low if interval else None
        out[f"{name}_ci_high"] = interval.high if interval else None
    return out


def collect(
    sizes: list[str],
    seeds: list[int],
    reports: Path | None = None,
    finished: set[str] | None = None,
    data_sizes: list[int | None] | dict[str, list[int | None]] | None = None,
    variant: str = "",
) -> Study:
    """Read every (size, data size, seed) of a sweep (of one of its variants); those without
    complete reports are listed as missing. `data_sizes`: the values of data.train_samples
    (default: the axis is off), the same for every size or, as compute budgets make them, per size.

    With `finished`, a report counts only if its run id is in it, so that an older report at
    the same path never stands in for a run of this sweep that failed.
    """
    records, missing = [], []
    for size in sizes:
        cells = data_sizes.get(size, []) if isinstance(data_sizes, dict) else data_sizes
        for samples in cells or [None]:
            for seed in seeds:
                record = read_record(size, seed, reports, samples, variant)
                if record is None or (finished is not None and record.run_id not in finished):
                    missing.append(paths.run_key(size, seed, samples, variant))
                else:
                    records.append(record)
    records.sort(key=lambda r: (r.params, _whole_last(r.train_samples), r.seed))
    return Study(records=records, missing=missing)


def analyse(study: Study, n_boot: int = 1000) -> Study:
    """Fit loss and error against parameters and loss against FLOPs on rung means, hold the
    largest rung out, and judge the result."""
    if study.missing:
        study.notes.append(f"missing runs, left out of the fit: {', '.join(study.missing)}")
    if edge := [f"{r.key} ({r.lr_edge})" for r in study.records if r.lr_edge]:
        study.notes.append(
            f"learning-rate search: {len(edge)} of {len(study.records)} runs chose the smallest or "
            f"largest rate of trainer.lr_search ({', '.join(edge)}); their best may lie outside "
            f"it: widen the grid, or let it grow past its ends (trainer.lr_search_extend)"
        )
    if study.budgets:
        _fit_budgets(study, n_boot)
        return study
    if len(study.data_sizes) > 1:
        _fit_joint(study, n_boot)
    rungs = study.rungs
    if len(rungs) >= 3:
        params = np.array([r.params for r in rungs], dtype=float)
        study.fits = {
            "loss_vs_params": fit_ladder(params, [r.losses for r in rungs], n_boot),
            "error_vs_params": fit_ladder(params, [r.errors for r in rungs], n_boot),
            "loss_vs_flops": fit_ladder(
                np.array([r.flops for r in rungs]), [r.losses for r in rungs], n_boot
            ),
        }
        if study.fits["loss_vs_params"].method == "residuals":
            study.notes.append("one seed per rung: intervals resample the fit's residuals, not seeds")
        if len(rungs) >= 4:
            study.holdout = holdout(rungs, n_boot)
    study.verdict = judge(rungs, study.fits.get("loss_vs_params"), study.holdout)
    return study


def _fit_joint(study: Study, n_boot: int) -> None:
    """The data axis: L(N, D) over every run; the ladder's fit and verdict keep the largest D."""
    runs = [r for r in study.records if r.data is not None]
    largest = study.data_sizes[-1]
    study.notes.append(
        f"data axis: the size ladder's law and verdict use the runs with the most training data "
        f"(data.train_samples={'all' if largest is None else largest}); the joint law L(N, D) "
        f"uses all {len(runs)} runs"
    )
    columns = tuple(np.array([getattr(r, k) for r in runs], dtype=float) for k in ("params", "data", "loss"))
    try:
        study.joint = fit_joint(*columns, resamples=n_boot)
        study.joint_holdout = holdout_largest_data(*columns)
    except ValueError as err:
        study.notes.append(f"no joint law L(N, D): {err}")


def _fit_budgets(study: Study, n_boot: int) -> None:
    """Compute budgets: IsoFLOP profiles (approach 2) and L(N, D) over every run, judged together.

    No law over size alone: within a budget, a larger model sees fewer samples, so loss is not
    monotone in N. D_opt = C / (k·N_opt) with the study's own k, the training FLOPs per parameter
    and training sample (epochs included), as its runs measured it rather than Kaplan's 6."""
    runs = [r for r in study.records if r.budget is not None and r.data is not None]
    unit = "tokens" if runs and all(r.tokens is not None for r in runs) else "samples"
    study.notes.append(
        f"compute budgets: {len(study.budgets)} IsoFLOP profiles and the joint law L(N, D) over "
        f"{len(runs)} runs, D in training {unit}; the size table shows the largest budget's profile"
    )
    budget, params, data, loss = (
        np.array([getattr(r, k) for r in runs], dtype=float)
        for k in ("budget", "params", "tokens" if unit == "tokens" else "data", "loss")
    )
    per_param_sample = float(np.median(budget / (params * data)))
    verdict = Verdict()
    try:
        study.isoflop = fit_isoflop(budget, params, loss, per_param_sample, resamples=n_boot, unit=unit)
        for flag, reason in zip(study.isoflop.flags, study.isoflop.reasons, strict=True):
            verdict.fail(flag, reason)
    except ValueError as err:
        verdict.fail("no_isoflop_fit", f"no IsoFLOP fit: {err}")
    try:
        study.joint = fit_joint(params, data, loss, resamples=n_boot)
        for reason in study.joint_reasons():
            verdict.fail("joint_law", f"joint law: {reason}")
    except ValueError as err:
        study.notes.append(f"no joint law L(N, D): {err}")
    study.verdict = verdict


def holdout(rungs: list[Rung], n_boot: int) -> dict[str, Any]:
    """Fit without the largest rung and predict it; compare with persistence (the next size's loss)."""
    largest, rest = rungs[-1], rungs[:-1]
    fit = fit_ladder(np.array([r.params for r in rest], dtype=float), [r.losses for r in rest], n_boot)
    predicted = float(fit.law(largest.params))
    observed = largest.mean_loss
    persistence = rest[-1].mean_loss
    error, persistence_error = abs(predicted - observed) / observed, abs(persistence - observed) / observed
    low = high = None
    if fit.resamples:
        tail = (1 - LEVEL) / 2 * 100
        low, high = (
            float(v) for v in np.percentile(fit.curves(np.array([largest.params]))[:, 0], [tail, 100 - tail])
        )
    return {
        "size": largest.size,
        "predicted_test/loss": predicted,
        "predicted_ci_low": low,
        "predicted_ci_high": high,
        "observed_test/loss": observed,
        "rel_error": error,
        "persistence_rel_error": persistence_error,
        "beats_persistence": bool(error < persistence_error),
        "alpha": fit.law.alpha,
        "E": fit.law.E,
    }
