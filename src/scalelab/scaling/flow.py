"""A study's one flow, however its runs were launched: fit the law to the runs' reports, write
the study, give the MLflow parent run the study, register the champion.

`dvc repro`'s scaling stage (`fit_dvc_study`) and a multirun's callback (`scalelab.multirun`)
both end in `conclude`; they differ only in which runs count and where the parent comes from.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scalelab import atomic, paths
from scalelab.config import Config
from scalelab.errors import ScalelabError
from scalelab.scaling.report import markdown, write_study
from scalelab.scaling.study import Study, analyse, collect
from scalelab.tracking import registry, sweeps


class NoRunFinished(ScalelabError):
    """None of a study's runs has complete reports: there is nothing to fit."""


def run_ids(study: Study) -> list[str]:
    """The MLflow runs a study is made of: each record's run and its learning-rate trials."""
    ids = {r.run_id for r in study.records if r.run_id} | {t for r in study.records for t in r.trial_run_ids}
    return sorted(ids)


def conclude(config: Config, study: Study, out: Path, parent: str) -> tuple[Study, str]:
    """Fit `study`, write it to `out`, finish run `parent` with it and register the champion;
    return the analysed study and the champion's line."""
    if not study.records:
        raise NoRunFinished(f"no run finished ({', '.join(study.missing)})")
    study = analyse(study, config.sweep.bootstrap)
    best = registry.lowest_validation_loss(study.records)
    files = [*write_study(study, out), *best_predictions(best, out)]
    sweeps.finish_parent(config, parent, study.summary(), markdown(study), files)
    return study, registry.describe(registry.register_champion(config, study.records), config)


BEST_PREDICTIONS = "best_predictions.csv"  # a DVC plot: the test confusion of the champion's run


def best_predictions(best: registry.Candidate | None, out: Path) -> list[Path]:
    """Copy the test predictions of `best` (picked by the champion's rule) to
    `out/best_predictions.csv`; the files written."""
    if best is None:
        return []
    source = paths.run_reports(best.size, best.seed, samples=best.train_samples) / "predictions.csv"
    if not source.is_file():
        return []
    with atomic.atomic_path(out / BEST_PREDICTIONS) as tmp:
        shutil.copyfile(source, tmp)
    return [out / BEST_PREDICTIONS]


def fit_dvc_study(config: Config) -> None:
    """The scaling stage: every (size, data size, seed) of `sweep`, from `reports/`, under a
    parent that a rerun over the same runs and settings reuses."""
    data_sizes: list[int | None] = list(config.sweep.data_sizes) or [config.data.train_samples]
    study = collect(config.sweep.sizes, config.sweep.seeds, data_sizes=data_sizes)
    if not study.records:
        raise NoRunFinished(
            f"no run of the study has reports under {paths.REPORTS}/ ({', '.join(study.missing)}): "
            f"run dvc repro (its train@ and evaluate@ stages)"
        )
    study, champion = conclude(config, study, paths.REPORTS, sweeps.study_parent(config, run_ids(study)))
    print(markdown(study))
    print(champion)
