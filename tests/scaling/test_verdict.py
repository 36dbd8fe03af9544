"""The verdict: each check fires on a ladder built to trip it, and none fires on a clean ladder."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.scaling.law import PowerLaw
from scalelab.scaling.report import markdown
from scalelab.scaling.study import RunRecord, Study, analyse

LAW = PowerLaw(E=0.2, A=30.0, alpha=0.4)
LADDER = dict(zip(["xs", "s", "m", "l", "xl", "xxl"], np.geomspace(2e3, 1e6, 6).astype(int), strict=True))
SPREAD = (0.99, 1.0, 1.01)  # three seeds, ±1%


def study(means: dict[str, float] | None = None, spread=SPREAD, converged=None) -> Study:
    """A ladder whose rung means follow LAW unless `means` says otherwise."""
    records = []
    for size, params in LADDER.items():
        mean = (means or {}).get(size, float(LAW(params)))
        for seed, factor in enumerate(spread):
            done = (converged or {}).get((size, seed), True)
            records.append(
                RunRecord(
                    size,
                    seed,
                    f"{size}{seed}",
                    int(params),
                    6.0 * params,
                    mean * factor,
                    0.9,
                    1.0,
                    converged=done,
                )
            )
    return analyse(Study(records=records, missing=[]), n_boot=300)


def test_a_clean_ladder_is_credible() -> None:
    clean = study()
    assert clean.verdict.credible and clean.verdict.flags == []
    summary = clean.summary()
    assert summary["credible"] is True and summary["verdict"] == "credible law" and summary["reasons"] == []
    assert summary["holdout"]["beats_persistence"] and summary["holdout"]["rel_error"] < 0.01
    assert markdown(clean).startswith("**credible law**")


def test_an_exponent_beyond_the_box_is_flagged_on_bound() -> None:
    steep = PowerLaw(E=0.1, A=1e12, alpha=4.0)
    flagged = study({size: float(steep(n)) for size, n in LADDER.items()})
    assert "on_bound" in flagged.verdict.flags
    assert any("touches a bound" in reason for reason in flagged.verdict.reasons)


def test_a_floor_above_the_best_rung_is_flagged() -> None:
    # the middle rung dips below where the top flattens; ±6% seed noise keeps it from reading as non-monotone
    flagged = study(
        {"xs": 1.0, "s": 0.6, "m": 0.45, "l": 0.5, "xl": 0.5, "xxl": 0.5}, spread=(0.94, 1.0, 1.06)
    )
    assert "floor_above_best" in flagged.verdict.flags and "non_monotone" not in flagged.verdict.flags


def test_a_bigger_rung_worse_than_a_smaller_one_beyond_seed_noise_is_flagged() -> None:
    flagged = study({"l": float(LAW(LADDER["m"])) * 1.1})
    assert "non_monotone" in flagged.verdict.flags
    assert any(reason.startswith("l's mean loss") for reason in flagged.verdict.reasons)


def test_a_rise_within_seed_noise_is_not_non_monotone() -> None:
    within = study({"l": float(LAW(LADDER["m"])) * 1.01}, spread=(0.95, 1.0, 1.05))
    assert "non_monotone" not in within.verdict.flags


def test_a_law_that_loses_to_persistence_is_flagged() -> None:
    # the top rung gains nothing over the one below: "same as the next size" is exact, the law is not
    flagged = study({"xxl": float(LAW(LADDER["xl"]))}, spread=(0.999, 1.0, 1.001))
    assert not flagged.holdout["beats_persistence"]
    assert "worse_than_persistence" in flagged.verdict.flags


def test_a_run_still_improving_at_the_end_of_its_budget_is_flagged() -> None:
    flagged = study(converged={("m", 1): False})
    assert flagged.verdict.flags == ["unconverged"]
    assert "m-s1 still improved" in flagged.verdict.reasons[0]


def test_any_flag_makes_every_report_lead_with_no_credible_law() -> None:
    flagged = study({"l": float(LAW(LADDER["m"])) * 1.1})
    headline = flagged.verdict.headline()
    assert headline.startswith("no credible law: ") and "l's mean loss" in headline
    assert flagged.summary()["credible"] is False and flagged.summary()["verdict"] == headline
    assert markdown(flagged).startswith(f"**{headline}**")
    assert "(not credible: see above)" in markdown(flagged), "α is still reported, marked"


@pytest.mark.parametrize("sizes, flag", [(["xs", "s"], "too_few_rungs"), (["xs", "s", "m"], "no_holdout")])
def test_too_few_rungs_cannot_be_credible(sizes: list[str], flag: str) -> None:
    records = [
        RunRecord(s, 0, s, int(LADDER[s]), 6.0 * LADDER[s], float(LAW(LADDER[s])), 0.9, 1.0) for s in sizes
    ]
    assert analyse(Study(records=records, missing=[]), n_boot=50).verdict.flags == [flag]
