"""A scaling study: the runs of a sweep, read back from their reports, and the laws fitted to them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelab import paths
from scalelab.scaling.law import BootstrapFit, PowerLaw, bootstrap_fit, fit_power_law


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
    val_loss: float = float("nan")  # val/loss at the end of training: how a champion is chosen

    @property
    def error(self) -> float:
        return 1.0 - self.acc


def read_record(size: str, seed: int, reports: Path | None = None) -> RunRecord | None:
    """The record of `<size>-s<seed>` from its report files, or None if any is missing."""
    folder = (reports or paths.REPORTS) / "runs" / paths.run_key(size, seed)
    try:
        run = json.loads((folder / "run.json").read_text())
        trained = json.loads((folder / "train_metrics.json").read_text())
        tested = json.loads((folder / "metrics.json").read_text())
    except FileNotFoundError:
        return None
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
    )


@dataclass
class Fit:
    """A law fitted to (x, y), with intervals when the data allow them."""

    law: PowerLaw
    boot: BootstrapFit | None

    def summary(self) -> dict[str, Any]:
        """Coefficients and 95% intervals as plain numbers (null when unknown)."""
        out: dict[str, Any] = {"alpha": self.law.alpha, "E": self.law.E, "A": self.law.A}
        for name in ("alpha", "E", "A"):
            interval = getattr(self.boot, name) if self.boot else None
            out[f"{name}_ci_low"] = interval.low if interval else None
            out[f"{name}_ci_high"] = interval.high if interval else None
        return out


@dataclass
class Study:
    """Runs of a sweep ordered as the ladder, which (size, seed) pairs are missing, and the fits."""

    records: list[RunRecord]
    missing: list[str]
    fits: dict[str, Fit] = field(default_factory=dict)  # loss_vs_params, error_vs_params, loss_vs_flops
    holdout: dict[str, Any] | None = None  # the law fitted without the largest size, tested on it
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> list[str]:
        return list(dict.fromkeys(r.size for r in self.records))

    def summary(self) -> dict[str, Any]:
        """What `reports/scaling.json` holds: DVC metrics, compared across experiments."""
        largest = [r for r in self.records if r.size == self.sizes()[-1]] if self.records else []
        return {
            "runs": len(self.records),
            "missing_runs": len(self.missing),  # a number, so `dvc exp show` has a column for it
            "sizes": self.sizes(),
            "missing": self.missing,
            **{name: fit.summary() for name, fit in self.fits.items()},
            "holdout": self.holdout,
            "largest": {
                "size": largest[0].size,
                "params": largest[0].params,
                "test/loss": float(np.mean([r.loss for r in largest])),
                "test/acc": float(np.mean([r.acc for r in largest])),
            }
            if largest
            else None,
            "notes": self.notes,
        }


def collect(
    sizes: list[str], seeds: list[int], reports: Path | None = None, finished: set[str] | None = None
) -> Study:
    """Read every (size, seed) of a sweep; those without complete reports are listed as missing.

    With `finished`, a report counts only if its run id is in it, so that an older report at
    the same path never stands in for a run of this sweep that failed.
    """
    records, missing = [], []
    for size in sizes:
        for seed in seeds:
            record = read_record(size, seed, reports)
            if record is None or (finished is not None and record.run_id not in finished):
                missing.append(paths.run_key(size, seed))
            else:
                records.append(record)
    records.sort(key=lambda r: (r.params, r.seed))
    return Study(records=records, missing=missing)


def _fit(x: np.ndarray, y: np.ndarray, n_boot: int) -> Fit:
    if n_boot > 0:
        boot = bootstrap_fit(x, y, n_boot=n_boot)
        if boot is not None:
            return Fit(boot.law, boot)
    return Fit(fit_power_law(x, y)[0], None)


def analyse(study: Study, n_boot: int = 200) -> Study:
    """Fit loss and error against parameters, loss against FLOPs, and the held-out prediction."""
    records = study.records
    if study.missing:
        study.notes.append(f"missing runs, left out of the fit: {', '.join(study.missing)}")
    if len(study.sizes()) < 3:
        study.notes.append(f"{len(study.sizes())} sizes finished; a law needs 3 or more: no fit")
        return study
    params = np.array([r.params for r in records], dtype=float)
    flops = np.array([r.flops for r in records], dtype=float)
    loss = np.array([r.loss for r in records])
    # A perfect score has zero error, which has no logarithm: floor it at half a test sample.
    error = np.maximum(np.array([r.error for r in records]), 1e-4)
    study.fits = {
        "loss_vs_params": _fit(params, loss, n_boot),
        "error_vs_params": _fit(params, error, n_boot),
        "loss_vs_flops": _fit(flops, loss, n_boot),
    }
    largest = params.max()
    rest = params < largest
    if len(np.unique(params[rest])) >= 3:
        law, _ = fit_power_law(params[rest], loss[rest])
        predicted = float(law(largest))
        observed = float(loss[~rest].mean())
        study.holdout = {
            "size": study.sizes()[-1],
            "predicted_test/loss": predicted,
            "observed_test/loss": observed,
            "rel_error": abs(predicted - observed) / observed,
            "alpha": law.alpha,
            "E": law.E,
        }
    else:
        study.notes.append("fewer than 4 sizes: no held-out-largest prediction")
    return study
