"""Write a study where DVC and people read it: scaling.json, scaling.csv, plots and a Markdown table."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from scalelab import atomic
from scalelab.scaling.intervals import LadderFit
from scalelab.scaling.isoflop import IsoFlopFit, isoflop_summary
from scalelab.scaling.study import Study

PLOTS = (
    "loss_vs_params.png",
    "acc_vs_params.png",
    "loss_vs_flops.png",  # with compute budgets: every run by budget, and the compute-optimal frontier
    "isoflop.png",  # loss against size at each compute budget, with its parabola and minimum
    "optimal_vs_compute.png",  # N_opt and D_opt against the budget, with their power laws
)
EXTRAPOLATE = 4.0  # draw the law out to 4x the largest rung: "what would the next size buy?"


def write_study(study: Study, out: Path) -> list[Path]:
    """Write `<out>/scaling.json`, `scaling.csv` and `scaling/*.png`; return the files written."""
    atomic.write_json(out / "scaling.json", study.summary())
    with atomic.atomic_path(out / "scaling.csv") as tmp, tmp.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            [
                "size",
                "seed",
                "run_id",
                "model/params",
                "train/flops",
                "test/loss",
                "test/acc",
                "train/seconds",
                "data/train_samples",  # D: with model/params and test/loss, what scalelab.scaling.fit reads
                "data/compute_budget",  # C of an IsoFLOP profile (scalelab.scaling.fit --isoflop)
            ]
        )
        for r in study.records:
            data = "" if r.data is None else r.data
            budget = "" if r.budget is None else r.budget
            writer.writerow(
                [r.size, r.seed, r.run_id, r.params, r.flops, r.loss, r.acc, r.seconds, data, budget]
            )
    return [out / "scaling.json", out / "scaling.csv", *plot_study(study, out / "scaling")]


def markdown(study: Study) -> str:
    """The study in Markdown, verdict first: the console's summary and the MLflow parent's description."""
    verdict = study.verdict
    lines = [f"**{verdict.headline()}**", ""]
    lines += [
        "| size | parameters | seeds | test loss (mean) | seed sd | law | log residual |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in study.residuals():
        sd = f"{row['test/loss_sd']:.4f}" if row["test/loss_sd"] is not None else "–"
        law = f"{row['fit/test/loss']:.4f}" if row["fit/test/loss"] is not None else "–"
        residual = f"{row['log_residual']:+.4f}" if row["log_residual"] is not None else "–"
        lines.append(
            f"| {row['size']} | {row['params']:,} | {row['seeds']} | {row['test/loss']:.4f} "
            f"| {sd} | {law} | {residual} |"
        )
    if fit := study.fits.get("loss_vs_params"):
        law, summary = fit.law, study.summary()["loss_vs_params"]
        mark = "" if verdict.credible else " (not credible: see above)"
        alpha = fit.interval("alpha")
        ci = f", 95% CI α ∈ [{alpha.low:.3f}, {alpha.high:.3f}]" if alpha else ""
        lines += ["", f"**Fit**{mark}: L(N) = {law.E:.4f} + {law.A:.4g}·N^(−{law.alpha:.3f}){ci}"]
        if fit.resamples:
            lines.append(f"({fit.resamples} bootstrap resamples by {fit.method}, ν = {fit.dof})")
        seed_sd = summary["seed_log_sd"]
        noise = f"; one seed's log sd {seed_sd:.4f}" if seed_sd is not None else "; one seed: noise unknown"
        lines.append(f"RMS log residual {summary['rms_log_residual']:.4f}{noise}.")
    if h := study.holdout:
        ci = (
            f" [{h['predicted_ci_low']:.4f}, {h['predicted_ci_high']:.4f}]"
            if h["predicted_ci_low"] is not None
            else ""
        )
        beats = "beats" if h["beats_persistence"] else "does not beat"
        lines.append(
            f"\nFit without `{h['size']}` predicts its test loss {h['predicted_test/loss']:.4f}{ci}; "
            f"observed {h['observed_test/loss']:.4f} ({h['rel_error']:.1%} off). Persistence (the next "
            f"size's loss) is {h['persistence_rel_error']:.1%} off: the law {beats} it."
        )
    if study.isoflop is not None:
        lines += ["", _isoflop_lines(study)]
    if study.joint is not None:
        lines += ["", _joint_line(study)]
    lines += [
        "",
        "| size | seed | parameters | training samples | budget | train FLOPs | test loss | test acc "
        "| converged | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in study.records:
        converged = "–" if r.converged is None else ("yes" if r.converged else "no")
        data = "–" if r.data is None else f"{r.data:,}"
        budget = "–" if r.budget is None else f"{r.budget:.3g}"
        lines.append(
            f"| {r.size} | {r.seed} | {r.params:,} | {data} | {budget} | {r.flops:.3g} | {r.loss:.4f} "
            f"| {r.acc:.4f} | {converged} | {r.seconds:.1f} |"
        )
    lines += [f"\n_Note: {note}_" for note in study.notes]
    return "\n".join(lines)


def _isoflop_lines(study: Study) -> str:
    """The IsoFLOP fit in Markdown: a and b with intervals, then each budget's optimum."""
    fit, summary = study.isoflop, isoflop_summary(study.isoflop)

    def ci(name: str) -> str:
        low, high = summary[f"{name}_ci_low"], summary[f"{name}_ci_high"]
        return f" [{low:.3f}, {high:.3f}]" if low is not None else ""

    exponents = (
        f"N_opt ∝ C^{fit.a:.3f}{ci('a')}, D_opt ∝ C^{fit.b:.3f}{ci('b')} (95%)"
        if summary["a"] is not None
        else "no N_opt ∝ C^a (fewer than 2 budgets have a minimum)"
    )
    lines = [
        f"**IsoFLOP profiles** ({len(fit.profiles)} budgets, {summary['resamples']} resamples): "
        f"{exponents}, with {fit.flops_per_param_sample:.3g} training FLOPs per parameter and "
        f"training {fit.unit.removesuffix('s')}.",
        "",
        f"| budget (FLOPs) | sizes | N_opt [95%] | D_opt ({fit.unit}) | {fit.unit} per parameter [95%] "
        "| optimal test loss |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    ratio = f"{fit.unit}_per_param"
    for b in summary["budgets"]:
        if b["n_opt"] is None:
            lines.append(f"| {b['compute']:.3g} | {b['sizes']} | no minimum | – | – | – |")
            continue
        mark = "" if b["inside"] else " (outside)"
        n_ci = f" [{b['n_opt_ci_low']:,.0f}, {b['n_opt_ci_high']:,.0f}]" if b["n_opt_ci_low"] else ""
        r_ci = f" [{b[ratio + '_ci_low']:.3g}, {b[ratio + '_ci_high']:.3g}]" if b[ratio + "_ci_low"] else ""
        lines.append(
            f"| {b['compute']:.3g} | {b['sizes']} | {b['n_opt']:,.0f}{mark}{n_ci} | {b['d_opt']:,.0f} "
            f"| {b[ratio]:.3g}{r_ci} | {b['loss_opt']:.4f} |"
        )
    if h := fit.holdout:
        lines.append(
            f"\nFitted without budget {h['compute']:.3g}: N_opt predicted {h['predicted_n_opt']:,.0f} "
            f"(observed {h['observed_n_opt']:,.0f}, {h['n_opt_rel_error']:.1%} off); optimal loss "
            f"{h['predicted_loss_opt']:.4f} (observed {h['observed_loss_opt']:.4f}, "
            f"{h['loss_opt_rel_error']:.1%} off; the next budget down's: {h['persistence_rel_error']:.1%})."
        )
    return "\n".join(lines)


def _joint_line(study: Study) -> str:
    """The joint law with its intervals, in one line of Markdown."""
    fit = study.joint
    law = fit.law

    def ci(name: str) -> str:
        interval = fit.interval(name)
        return f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""

    a, b = law.exponents
    reasons = study.joint_reasons()
    held = ""
    if (h := study.joint_holdout) and h["cells"]:
        held = (
            f" Fitted without D = {h['data_size']:,}, it predicts those runs {h['rel_error']:.1%} off "
            f"(persistence, each size's loss at the next D down: {h['persistence_rel_error']:.1%})."
        )
    verdict = "" if not reasons else f" **Not credible**: {'; '.join(reasons)}."
    return (
        f"**Joint law** over {fit.rows} runs: L(N, D) = {law.E:.4f} + {law.A:.4g}·N^(−{law.alpha:.3f}) "
        f"+ {law.B:.4g}·D^(−{law.beta:.3f}); α{ci('alpha')}, β{ci('beta')} (95%, {len(fit.resampled)} "
        f"resamples of {fit.method}). Compute-optimal: N_opt ∝ C^{a:.2f}{ci('a')}, "
        f"D_opt ∝ C^{b:.2f}{ci('b')}.{held}{verdict}"
    )


def _per_size(study: Study, values: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per size of the ladder (the runs with the most data): x (parameters), mean and standard
    deviation over seeds. `values` are those of `study.ladder_records`."""
    xs, means, stds = [], [], []
    records = study.ladder_records
    for size in study.sizes():
        picked = [v for r, v in zip(records, values, strict=True) if r.size == size]
        xs.append(next(r.params for r in records if r.size == size))
        means.append(np.mean(picked))
        stds.append(np.std(picked))
    return np.array(xs, dtype=float), np.array(means), np.array(stds)


def _draw_law(ax, fit: LadderFit | None, x: np.ndarray, transform=lambda v: v, label: str = "fit") -> None:
    if fit is None or len(x) == 0:  # too few sizes for a law: the plot shows the runs and says so
        ax.text(0.5, 0.95, "no fit: fewer than 3 sizes", transform=ax.transAxes, ha="center")
        return
    grid = np.geomspace(x.min() / 1.5, x.max() * EXTRAPOLATE, 200)
    law = fit.law
    ax.plot(
        grid,
        transform(law(grid)),
        color="C1",
        label=f"{label}: {law.E:.3g} + {law.A:.3g}·x^(−{law.alpha:.3f})",
    )
    if fit.resamples:
        low, high = fit.band(grid)
        ax.fill_between(
            grid, transform(low), transform(high), color="C1", alpha=0.2, label="95% bootstrap band"
        )
    ax.axvline(x.max(), color="grey", lw=0.8, ls=":")


def plot_study(study: Study, folder: Path) -> list[Path]:
    """Loss vs parameters (log-log), accuracy vs parameters, loss vs training FLOPs.

    Always writes all three (DVC declares them), drawing the law where there is one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = study.ladder_records  # with a data axis: the ladder at the largest training set
    files = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        with atomic.atomic_path(folder / name) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        files.append(folder / name)

    fig, ax = plt.subplots(figsize=(7, 5))
    x, mean, std = _per_size(study, [r.loss for r in records])
    ax.scatter([r.params for r in records], [r.loss for r in records], s=10, color="C0", alpha=0.4)
    ax.errorbar(x, mean, yerr=std, fmt="o", color="C0", capsize=3, label="test loss (mean ± sd over seeds)")
    for size, xi, yi in zip(study.sizes(), x, mean, strict=True):
        ax.annotate(size, (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
    _draw_law(ax, study.fits.get("loss_vs_params"), x)
    if h := study.holdout:
        predicted = h["predicted_test/loss"]
        spread = (
            [[predicted - h["predicted_ci_low"]], [h["predicted_ci_high"] - predicted]]
            if h["predicted_ci_low"] is not None
            else None
        )
        ax.errorbar(
            [x.max()],
            [predicted],
            yerr=spread,
            fmt="x",
            ms=8,
            color="C3",
            capsize=3,
            label=f"predicted without {h['size']} ({h['rel_error']:.1%} off; persistence "
            f"{h['persistence_rel_error']:.1%})",
        )
    if not study.verdict.credible:
        ax.set_title("Test loss vs model size: no credible law", color="C3")
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="test loss")
    if study.verdict.credible:
        ax.set_title("Test loss vs model size")
    ax.legend(fontsize=8)
    save(fig, PLOTS[0])

    fig, ax = plt.subplots(figsize=(7, 5))
    x, mean, std = _per_size(study, [r.acc for r in records])
    ax.errorbar(x, mean, yerr=std, fmt="o", color="C0", capsize=3, label="test accuracy")
    _draw_law(ax, study.fits.get("error_vs_params"), x, transform=lambda e: 1 - e, label="1 − error fit")
    ax.set(xscale="log", xlabel="parameters", ylabel="test accuracy", title="Test accuracy vs model size")
    ax.legend(fontsize=8)
    save(fig, PLOTS[1])

    fig, ax = plt.subplots(figsize=(7, 5))
    flops = np.array([r.flops for r in records])
    if study.budgets:  # every run, one colour per budget, and the compute-optimal frontier
        _draw_frontier(ax, study)
    for i, samples in enumerate([] if study.budgets else study.data_sizes):  # one colour per D
        runs = [r for r in study.records if r.train_samples == samples]
        label = "runs" if samples is None else f"runs, {samples:,} training samples"
        ax.scatter([r.flops for r in runs], [r.loss for r in runs], color=_colour(i), label=label)
    if not study.budgets:
        _draw_law(ax, study.fits.get("loss_vs_flops"), flops)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="training FLOPs",
        ylabel="test loss",
        title="Test loss vs training compute",
    )
    ax.legend(fontsize=8)
    save(fig, PLOTS[2])

    fig, ax = plt.subplots(figsize=(7, 5))
    _draw_isoflop(ax, study.isoflop, study)
    save(fig, PLOTS[3])

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    _draw_optimal(axes, study.isoflop)
    save(fig, PLOTS[4])
    return files


def _colour(i: int) -> str:
    return f"C{(0, 2, 4, 5, 6, 7, 8, 9)[i % 8]}"  # C1 draws the law, C3 the held-out point


def _no_budgets(ax, why: str = "no compute budgets in this study\n(sweep.compute_budgets)") -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _draw_frontier(ax, study: Study) -> None:
    """Runs by budget against the FLOPs they spent; the frontier through each budget's optimum."""
    for i, budget in enumerate(study.budgets):
        runs = [r for r in study.records if r.budget == budget]
        ax.scatter([r.flops for r in runs], [r.loss for r in runs], color=_colour(i), s=14,
                   label=f"budget {budget:.3g} FLOPs")  # fmt: skip
    optima = [p for p in study.isoflop.profiles if p.has_minimum] if study.isoflop else []
    if optima:
        ax.plot([p.compute for p in optima], [p.loss_opt for p in optima], "-o", color="C1",
                label="compute-optimal frontier (each budget's minimum)")  # fmt: skip


def _draw_isoflop(ax, fit: IsoFlopFit | None, study: Study) -> None:
    """Each budget's runs against N, its parabola in log N and its minimum."""
    if fit is None:
        _no_budgets(ax)
        return
    for i, p in enumerate(fit.profiles):
        runs = [r for r in study.records if r.budget == p.compute]
        ax.scatter([r.params for r in runs], [r.loss for r in runs], color=_colour(i), s=12, alpha=0.6)
        grid = np.geomspace(p.sizes.min(), p.sizes.max(), 100)
        x = np.log(grid)
        curve = np.exp(p.coefficients[0] + p.coefficients[1] * x + p.coefficients[2] * x**2)
        ax.plot(grid, curve, color=_colour(i), label=f"C = {p.compute:.3g} FLOPs")
        if p.has_minimum:
            ax.plot([p.n_opt], [p.loss_opt], "*", ms=12, color=_colour(i), mec="black")
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="test loss",
           title="IsoFLOP profiles: test loss vs size at fixed compute (★ optimum)")  # fmt: skip
    ax.legend(fontsize=8)


def _draw_optimal(axes, fit: IsoFlopFit | None) -> None:
    """N_opt and D_opt against C: each budget's optimum and the fitted power laws."""
    optima = [p for p in fit.profiles if p.has_minimum] if fit else []
    if len(optima) < 2:
        for ax in axes:
            _no_budgets(ax) if fit is None else _no_budgets(ax, "fewer than 2 budgets have a minimum")
        return
    compute = np.array([p.compute for p in optima])
    grid = np.geomspace(compute.min() / 2, compute.max() * EXTRAPOLATE, 100)
    found = {"N_opt": np.array([p.n_opt for p in optima]), "D_opt": fit.d_opt(compute)}
    laws = {"N_opt": fit.n_opt(grid), "D_opt": fit.d_opt(grid)}
    exponents = {"N_opt": fit.a, "D_opt": fit.b}
    for ax, name, label in zip(axes, found, ("parameters", "training samples"), strict=True):
        ax.plot(compute, found[name], "o", color="C0", label=f"{name} of each budget")
        ax.plot(grid, laws[name], color="C1", label=f"{name} ∝ C^{exponents[name]:.3f}")
        ax.set(xscale="log", yscale="log", xlabel="compute budget (training FLOPs)", ylabel=label,
               title=f"Compute-optimal {label} vs budget")  # fmt: skip
        ax.legend(fontsize=8)
