"""Whether a fitted law can be trusted: five checks a careful scaling-law paper makes.

Each check that fails adds a flag and one sentence; any flag makes the study lead with
"no credible law: <reasons>". The checks (DESIGN.md, "Scaling-law practice"):
- `on_bound`: α (or its 95% interval) or E sits on the box of the fit: the data do not pin it;
- `floor_above_best`: the fitted floor E is at or above the lowest rung's mean loss (Henighan
  et al. 2020: E is what no size gets below, so a rung under it contradicts the law);
- `non_monotone`: a bigger rung's mean loss is above a smaller one's by more than 2 seed standard
  deviations (with one seed there is no noise estimate, and any rise counts);
- `worse_than_persistence`: held out, the law predicts the largest rung no better than "the same
  as the next size down" (Alabdulmohsin et al. 2022);
- `unconverged`: a run was still improving on validation loss when its epoch budget ran out.
Too few rungs to fit, or to hold one out, is not credible either (`too_few_rungs`, `no_holdout`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scalelab.scaling.intervals import LadderFit
    from scalelab.scaling.study import Rung


@dataclass
class Verdict:
    """`credible` when no check failed; otherwise the failed checks' flags and sentences."""

    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def credible(self) -> bool:
        return not self.flags

    def fail(self, flag: str, reason: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
        self.reasons.append(reason)

    def headline(self) -> str:
        """The line a report opens with."""
        return "credible law" if self.credible else "no credible law: " + "; ".join(self.reasons)


def judge(rungs: list[Rung], fit: LadderFit | None, holdout: dict[str, Any] | None) -> Verdict:
    """Run every check on a ladder (rungs ordered by size), its law and its held-out test."""
    verdict = Verdict()
    if fit is None:
        counted = f"{len(rungs)} rung{'' if len(rungs) == 1 else 's'}"
        verdict.fail("too_few_rungs", f"{counted} finished; a law needs 3 or more")
    else:
        _bounds(verdict, fit)
        best = min(rungs, key=lambda r: r.mean_loss)
        if best.mean_loss <= fit.law.E:
            verdict.fail(
                "floor_above_best",
                f"the fitted floor E = {fit.law.E:.4g} is not below {best.size}'s mean loss "
                f"{best.mean_loss:.4g}, which the law says no size can reach",
            )
    _monotone(verdict, rungs)
    if holdout is None:
        if fit is not None:
            verdict.fail("no_holdout", "fewer than 4 rungs: no held-out check of the law")
    elif not holdout["beats_persistence"]:
        verdict.fail(
            "worse_than_persistence",
            f"held out, {holdout['size']} is predicted {holdout['rel_error']:.1%} off, no better than "
            f"taking the next size's loss ({holdout['persistence_rel_error']:.1%} off)",
        )
    unfinished = [
        f"{r.size}-s{seed}"
        for r in rungs
        for seed, ok in zip(r.seeds, r.converged, strict=True)
        if ok is False
    ]
    if unfinished:
        verdict.fail(
            "unconverged",
            f"{', '.join(unfinished)} still improved at the end of the epoch budget "
            f"(raise trainer.max_epochs)",
        )
    return verdict


def _bounds(verdict: Verdict, fit: LadderFit) -> None:
    hits = fit.on_bound()
    if "alpha" in hits:
        alpha = fit.interval("alpha")
        shown = f"α = {fit.law.alpha:.3g}" + (f" [{alpha.low:.3g}, {alpha.high:.3g}]" if alpha else "")
        low, high = fit.bounds.lower[1], fit.bounds.upper[1]
        verdict.fail(
            "on_bound",
            f"{shown} touches a bound of [{low:g}, {high:g}]: the ladder does not pin the exponent",
        )
    if "E" in hits:
        verdict.fail(
            "on_bound",
            f"the floor E = {fit.law.E:.3g} sits on a bound of its range: the ladder does not pin it",
        )


def _monotone(verdict: Verdict, rungs: list[Rung]) -> None:
    """Each rung against every smaller one: a rise beyond 2 pooled seed standard deviations."""
    for i, big in enumerate(rungs):
        for small in rungs[:i]:
            rise = big.mean_loss - small.mean_loss
            sd = float(np.sqrt((big.loss_sd**2 + small.loss_sd**2) / 2))
            if rise > 2 * sd if not np.isnan(sd) else rise > 0:
                noise = f"2 seed sd = {2 * sd:.3g}" if not np.isnan(sd) else "one seed: any rise counts"
                verdict.fail(
                    "non_monotone",
                    f"{big.size}'s mean loss {big.mean_loss:.4g} is above {small.size}'s "
                    f"{small.mean_loss:.4g} ({noise})",
                )
                return
