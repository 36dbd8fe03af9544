"""A study's one flow, however its runs were launched: fit the law to the runs' reports, write
the study, give the MLflow parent run the study, register the champion.

`dvc repro`'s scaling stage (`fit_dvc_study`) and a multirun's callback (`scalelab.multirun`)
both end in `conclude`; they differ only in which runs count and where the parent comes from.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from scalelab import atomic, paths
from scalelab.compute_budget import samples_by_size
from scalelab.config import Config
from scalelab.errors import ScalelabError
from scalelab.scaling.report import markdown, write_study
from scalelab.scaling.study import Study, analyse, collect
from scalelab.tracking import registry, sweeps
from scalelab.variants import VARIANT_TAG


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
    source = paths.run_reports(best.size, best.seed, samples=best.train_samples, variant=best.variant)
    source = source / "predictions.csv"
    if not source.is_file():
        return []
    with atomic.atomic_path(out / BEST_PREDICTIONS) as tmp:
        shutil.copyfile(source, tmp)
    return [out / BEST_PREDICTIONS]


def fit_dvc_study(config: Config) -> None:
    """The scaling stage: every (size, data size, seed) of `sweep`, from `reports/`, under a
    parent that a rerun over the same runs and settings reuses."""
    sweep = config.sweep
    cells: list[int | None] | dict[str, list[int | None]] = list(sweep.data_sizes) or [
        config.data.train_samples
    ]
    if sweep.compute_budgets:  # each budget buys each size its own training-set size
        cells = samples_by_size(config, sweep.sizes, sweep.compute_budgets)  # type: ignore[assignment]
    study = collect(sweep.sizes, sweep.seeds, data_sizes=cells)
    if not study.records:
        raise NoRunFinished(
            f"no run of the study has reports under {paths.REPORTS}/ ({', '.join(study.missing)}): "
            f"run dvc repro (its train@ and evaluate@ stages)"
        )
    study, champion = conclude(config, study, paths.REPORTS, sweeps.study_parent(config, run_ids(study)))
    print(markdown(study))
    print(champion)


def variant_studies(config: Config, children: list[Any], finished: set[str]) -> dict[str, Study]:
    """The runs of a multirun over other settings, read back per variant: each variant's sizes,
    seeds and training-set sizes are those its MLflow runs were started with (a search picks
    its own, so the command line cannot list them)."""
    grids: dict[str, tuple[dict[str, set[int | None]], set[int]]] = {}
    for run in children:
        tags, params = run.data.tags, run.data.params
        if "size" not in tags:
            continue
        data, seeds = grids.setdefault(tags.get(VARIANT_TAG, ""), ({}, set()))
        seeds.add(int(tags["seed"]))
        samples = params.get("data.train_samples")  # per size: a compute budget picks its own
        data.setdefault(tags["size"], set()).add(None if samples in (None, "None") else int(samples))
    ladder = list(config.model.ladder)
    by_ladder = lambda size: (ladder.index(size) if size in ladder else len(ladder), size)  # noqa: E731
    smallest_first = lambda s: (s is None, s or 0)  # noqa: E731
    return {
        variant: collect(
            sorted(data, key=by_ladder),
            sorted(seeds),
            finished=finished,
            data_sizes={size: sorted(sizes, key=smallest_first) for size, sizes in data.items()},
            variant=variant,
        )
        for variant, (data, seeds) in sorted(grids.items())
    }


VARIANTS_FILE = "variants.csv"  # one row per variant of a multirun, the best first


def conclude_variants(
    config: Config, studies: dict[str, Study], out: Path, parent: str, comparable: bool = True
) -> tuple[dict[str, Study], str]:
    """Fit each variant's study into `out/<variant>/`; give run `parent` the table of variants
    (`out/variants.csv`) and the study of the best one (the variant of the run with the lowest
    validation loss); register that run. Return the analysed studies and the champion's line.

    Variants that differ in their data (`comparable=False`) have validation losses on different
    validation sets: none is best, and no champion is registered."""
    analysed = {v: analyse(s, config.sweep.bootstrap) for v, s in studies.items() if s.records}
    if not analysed:
        missing = [key for study in studies.values() for key in study.missing]
        raise NoRunFinished(f"no run finished ({', '.join(missing) or 'none started'})")
    for variant, study in studies.items():
        if variant not in analysed:
            analysed[variant] = study  # none of its runs finished: listed, with its missing runs
    files = [file for v, s in analysed.items() if s.records for file in write_study(s, out / v)]
    rows = [variant_row(v, s) for v, s in analysed.items()]
    if not comparable:
        files.append(atomic.write_csv(out / VARIANTS_FILE, rows, list(rows[0])))
        note = "\n".join([_variants_markdown(rows), "", NOT_COMPARABLE])
        sweeps.finish_parent(config, parent, {"variants": len(analysed)}, note, files, root=out)
        return analysed, f"champion: none registered: {NOT_COMPARABLE}"
    records = [r for s in analysed.values() for r in s.records]
    best = registry.lowest_validation_loss(records)
    rows.sort(key=lambda row: row["best_val/loss"])
    files.append(atomic.write_csv(out / VARIANTS_FILE, rows, list(rows[0])))
    files += best_predictions(best, out)
    best_study = analysed[best.variant] if best else next(s for s in analysed.values() if s.records)
    summary = best_study.summary() | {"variants": len(analysed)}
    heading = f"### Best variant: `{rows[0]['variant']}`"
    note = "\n".join([_variants_markdown(rows), "", heading, "", markdown(best_study)])
    sweeps.finish_parent(config, parent, summary, note, files, root=out)
    sweeps.tag(config, parent, {"sweep.best_variant": rows[0]["variant"]})
    return analysed, registry.describe(registry.register_champion(config, records), config)


NOT_COMPARABLE = (
    "the variants differ in their data, so their validation losses do not compare; sweep one "
    "dataset at a time to pick a best run"
)


def variant_row(variant: str, study: Study) -> dict[str, Any]:
    """One variant in numbers: its runs, its best validation loss (and that run's test loss),
    and its law over size when it has one."""
    scored = [r for r in study.records if not math.isnan(r.val_loss)]
    best = min(scored, key=lambda r: r.val_loss) if scored else None
    fit = study.fits.get("loss_vs_params")
    interval = fit.interval("alpha") if fit else None
    return {
        "variant": variant,
        "runs": len(study.records),
        "missing": len(study.missing),
        "sizes": " ".join(study.sizes()),
        "best_val/loss": best.val_loss if best else math.inf,
        "best_run": best.key if best else "",
        "best_test/loss": best.loss if best else math.nan,
        "alpha": fit.law.alpha if fit else None,
        "alpha_ci_low": interval.low if interval else None,
        "alpha_ci_high": interval.high if interval else None,
        "credible": study.verdict.credible if study.records else False,
    }


def _variants_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | runs | best val loss | its test loss | α (95% CI) | credible |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        alpha = "–"
        if row["alpha"] is not None:
            low, high = row["alpha_ci_low"], row["alpha_ci_high"]
            alpha = f"{row['alpha']:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")
        lines.append(
            f"| `{row['variant']}` | {row['runs']} | {row['best_val/loss']:.4f} "
            f"| {row['best_test/loss']:.4f} | {alpha} | {'yes' if row['credible'] else 'no'} |"
        )
    return "\n".join(lines)
