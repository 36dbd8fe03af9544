"""A study read back from per-run reports: fits, held-out prediction, missing runs, files written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalelab.scaling.fit import fit_isoflop_table, fit_table
from scalelab.scaling.joint import JointLaw
from scalelab.scaling.law import PowerLaw
from scalelab.scaling.report import PLOTS, markdown, write_study
from scalelab.scaling.study import analyse, collect

LAW = PowerLaw(E=0.1, A=30.0, alpha=0.5)
LADDER = {"xs": 300, "s": 1_266, "m": 6_570, "l": 50_826, "xl": 596_490}


def write_run(
    reports: Path,
    size: str,
    seed: int,
    loss: float,
    acc: float = 0.9,
    converged: bool = True,
    train_samples: int | None = None,
    budget: float | None = None,
    params: int | None = None,
) -> None:
    cell = size if train_samples is None else f"{size}/d{train_samples}"
    folder = reports / "train" / cell / f"s{seed}"
    folder.mkdir(parents=True)
    params = params or LADDER[size]
    run_id = f"id-{cell}-{seed}"
    run = {"run_id": run_id, "size": size, "seed": seed}
    (folder / "run.json").write_text(json.dumps(run | ({"compute_budget": budget} if budget else {})))
    (folder / "train_metrics.json").write_text(
        json.dumps(
            {
                "model/params": params,
                "train/flops": 6.0 * params * 1000,
                "train/seconds": 1.0,
                "train/converged": float(converged),
                "data/train_samples": train_samples or 1000,
            }
        )
    )
    tested = reports / "runs" / cell / f"s{seed}"
    tested.mkdir(parents=True)
    (tested / "metrics.json").write_text(json.dumps({"test/loss": loss, "test/acc": acc}))


def test_a_planted_law_comes_back_with_a_good_held_out_prediction(tmp_path: Path) -> None:
    for size, params in LADDER.items():
        for seed, wobble in enumerate((0.99, 1.0, 1.01)):
            write_run(tmp_path, size, seed, float(LAW(params)) * wobble, acc=1 - float(LAW(params)) / 3)
    study = analyse(collect(list(LADDER), [0, 1, 2], tmp_path), n_boot=200)
    summary = study.summary()
    assert summary["credible"] is True and summary["bootstrap"] == {
        "method": "seeds",
        "resamples": 200,
        "dof": 10,
    }
    assert summary["runs"] == 15 and summary["missing"] == [] and summary["sizes"] == list(LADDER)
    assert summary["loss_vs_params"]["alpha"] == pytest.approx(0.5, abs=0.02)
    assert summary["loss_vs_params"]["alpha_ci_low"] <= 0.5 <= summary["loss_vs_params"]["alpha_ci_high"]
    assert summary["loss_vs_flops"]["alpha"] == pytest.approx(0.5, abs=0.02), "FLOPs are 6000 x params here"
    assert summary["holdout"]["size"] == "xl" and summary["holdout"]["rel_error"] < 0.05
    holdout = summary["holdout"]
    assert holdout["predicted_ci_low"] <= holdout["observed_test/loss"] <= holdout["predicted_ci_high"]
    assert holdout["beats_persistence"] and holdout["persistence_rel_error"] > holdout["rel_error"]
    rungs = summary["rungs"]
    assert [r["size"] for r in rungs] == list(LADDER) and all(r["seeds"] == 3 for r in rungs)
    assert all(abs(r["log_residual"]) < 0.01 for r in rungs), "the planted law passes through every mean"
    assert summary["loss_vs_params"]["seed_log_sd"] == pytest.approx(0.01, rel=0.01)
    assert summary["loss_vs_params"]["rms_log_residual"] < 0.01
    assert summary["largest"]["size"] == "xl" and summary["largest"]["params"] == 596_490


def test_a_learning_rate_search_s_trial_runs_are_read_with_the_chosen_run(tmp_path: Path) -> None:
    write_run(tmp_path, "xs", 0, 1.0)
    run_file = tmp_path / "train/xs/s0/run.json"
    run = json.loads(run_file.read_text())
    run_file.write_text(json.dumps({**run, "trial_run_ids": ["a", run["run_id"], "c"], "lr_grid": [1, 2, 3]}))
    metrics_file = tmp_path / "train/xs/s0/train_metrics.json"
    metrics_file.write_text(json.dumps({**json.loads(metrics_file.read_text()), "lr_search/lr": 2}))
    [record] = collect(["xs"], [0], tmp_path).records
    assert record.run_id == "id-xs-0" and record.trial_run_ids == ("a", "id-xs-0", "c")
    assert record.lr_edge is None, "2 lies inside the grid [1, 2, 3]"


@pytest.mark.parametrize(("chosen", "edge"), [(1e-4, "smallest"), (1e-2, "largest")])
def test_a_search_that_chose_an_edge_of_its_grid_says_so(tmp_path: Path, chosen: float, edge: str) -> None:
    for size, params in LADDER.items():
        write_run(tmp_path, size, 0, float(LAW(params)))
        run_file = tmp_path / f"train/{size}/s0/run.json"
        run_file.write_text(json.dumps({**json.loads(run_file.read_text()), "lr_grid": [1e-4, 1e-3, 1e-2]}))
        metrics_file = tmp_path / f"train/{size}/s0/train_metrics.json"
        picked = chosen if size == "m" else 1e-3
        metrics_file.write_text(json.dumps({**json.loads(metrics_file.read_text()), "lr_search/lr": picked}))
    study = analyse(collect(list(LADDER), [0], tmp_path), n_boot=0)
    [note] = [n for n in study.notes if n.startswith("learning-rate search")]
    assert f"1 of 5 runs chose the smallest or largest rate of trainer.lr_search (m-s0 ({edge}))" in note


def test_missing_runs_are_named_and_left_out(tmp_path: Path) -> None:
    for size in ("xs", "m", "l", "xl"):
        write_run(tmp_path, size, 0, float(LAW(LADDER[size])))
    study = analyse(collect(list(LADDER), [0], tmp_path), n_boot=0)
    assert study.missing == ["s-s0"]
    assert "missing runs, left out of the fit: s-s0" in study.notes
    assert study.summary()["loss_vs_params"]["alpha_ci_low"] is None, "bootstrap off"
    assert "s-s0" in markdown(study)


def test_too_few_sizes_still_writes_every_declared_file(tmp_path: Path) -> None:
    write_run(tmp_path, "s", 0, 1.5)
    write_run(tmp_path, "m", 0, 0.8)
    study = analyse(collect(["s", "m"], [0], tmp_path))
    assert study.fits == {} and "a law needs 3 or more" in study.verdict.reasons[0]
    files = write_study(study, tmp_path)
    assert sorted(p.name for p in files) == sorted(["scaling.json", "scaling.csv", *PLOTS])
    assert all(p.stat().st_size > 0 for p in files)
    assert json.loads((tmp_path / "scaling.json").read_text())["holdout"] is None


def test_study_files_and_table(tmp_path: Path) -> None:
    for size, params in LADDER.items():
        write_run(tmp_path, size, 0, float(LAW(params)))
    study = analyse(collect(list(LADDER), [0], tmp_path), n_boot=20)
    write_study(study, tmp_path)
    rows = (tmp_path / "scaling.csv").read_text().splitlines()
    header = "size,seed,run_id,model/params,train/flops,test/loss,test/acc,train/seconds,data/train_samples,"
    header += "data/compute_budget"
    assert rows[0] == header
    assert [r.split(",")[0] for r in rows[1:]] == list(LADDER), "ordered by size"
    table = markdown(study)
    assert "| xl | 0 | 596,490 |" in table and "**Fit**: L(N) = 0.1000" in table
    assert "| xl | 596,490 | 1 |" in table, "one row per rung, beside one per run"


def test_a_report_from_another_run_does_not_stand_in_for_this_sweeps(tmp_path: Path) -> None:
    for size in ("xs", "s", "m"):
        write_run(tmp_path, size, 0, float(LAW(LADDER[size])))
    # This sweep's s run failed; the report at its path is an older run's (id-s-0).
    study = collect(["xs", "s", "m"], [0], tmp_path, finished={"id-xs-0", "id-m-0"})
    assert [r.size for r in study.records] == ["xs", "m"] and study.missing == ["s-s0"]


def test_a_data_axis_fits_the_joint_law_and_keeps_the_ladder_at_the_most_data(tmp_path: Path) -> None:
    planted = JointLaw(E=0.2, A=40.0, B=60.0, alpha=0.5, beta=0.4)
    data_sizes = [250, 500, 1000, 2000]
    for size, params in LADDER.items():
        for samples in data_sizes:
            for seed, wobble in enumerate((0.995, 1.0, 1.005)):
                loss = float(planted(params, samples)) * wobble
                write_run(tmp_path, size, seed, loss, train_samples=samples)
    study = analyse(collect(list(LADDER), [0, 1, 2], tmp_path, data_sizes=data_sizes), n_boot=30)
    assert len(study.records) == 60 and study.data_sizes == data_sizes
    assert {r.train_samples for r in study.ladder_records} == {2000}, "the ladder: the largest data size"
    summary = study.summary()
    joint = summary["joint"]
    assert (joint["runs"], joint["cells"], joint["bootstrap"]["method"]) == (60, 20, "runs within cells")
    for name, value in [("alpha", 0.5), ("beta", 0.4), ("E", 0.2)]:
        estimate = joint["estimates"][name]
        assert estimate["estimate"] == pytest.approx(value, rel=0.05), name
        assert estimate["low"] <= estimate["estimate"] <= estimate["high"], name
    assert "data axis" in " ".join(summary["notes"]) and "**Joint law** over 60 runs" in markdown(study)
    held = joint["holdout"]
    assert held["data_size"] == 2000 and len(held["cells"]) == 5
    assert held["beats_persistence"] and held["rel_error"] < 0.02 < held["persistence_rel_error"]
    assert joint["credible"] is True and joint["reasons"] == []
    write_study(study, tmp_path)
    report = fit_table(tmp_path / "scaling.csv", resamples=0)  # the lab's own table, as any CSV
    assert report["runs"] == 60 and report["estimates"]["beta"]["estimate"] == pytest.approx(0.4, rel=0.05)


def test_runs_of_a_data_axis_have_their_own_paths_and_names(tmp_path: Path) -> None:
    write_run(tmp_path, "m", 0, 1.0, train_samples=500)
    study = collect(["m"], [0, 1], tmp_path, data_sizes=[500, 1000])
    assert [r.key for r in study.records] == ["m-d500-s0"]
    assert study.missing == ["m-d500-s1", "m-d1000-s0", "m-d1000-s1"]


# A compute-budget study: sizes 2.5x apart, each budget C buying size N the training set
# D = C / (6·N), and a planted L(N, D) with α = β and A = B, whose optimum is N_opt = sqrt(C / 6).
BUDGET_LADDER = {"a": 2_000, "b": 5_000, "c": 12_500, "d": 31_250, "e": 78_125, "f": 195_312}
BALANCED = JointLaw(E=0.2, A=40.0, B=40.0, alpha=0.4, beta=0.4)


def write_budget_study(reports: Path, budgets: list[float], seeds: int) -> dict[str, list[int | None]]:
    cells: dict[str, list[int | None]] = {size: [] for size in BUDGET_LADDER}
    for budget in budgets:
        for size, params in BUDGET_LADDER.items():
            samples = int(budget / (6 * params))
            cells[size].append(samples)
            for seed, wobble in enumerate((0.995, 1.0, 1.005)[:seeds]):
                loss = float(BALANCED(params, samples)) * wobble
                write_run(reports, size, seed, loss, train_samples=samples, budget=budget, params=params)
    return cells


def test_compute_budgets_give_isoflop_profiles_the_joint_law_and_a_verdict(tmp_path: Path) -> None:
    budgets = [4e8, 1.6e9, 6.4e9, 2.56e10]  # N_opt 8k, 16k, 33k, 65k: N_opt ∝ C^0.5
    cells = write_budget_study(tmp_path, budgets, seeds=3)
    study = analyse(collect(list(BUDGET_LADDER), [0, 1, 2], tmp_path, data_sizes=cells), n_boot=100)
    assert len(study.records) == 72 and study.budgets == budgets
    assert {r.budget for r in study.ladder_records} == {2.56e10}, "the table: the largest budget's profile"
    assert study.fits == {}, "no law over size alone: within a budget a larger model sees less data"
    summary = study.summary()
    isoflop = summary["isoflop"]
    assert isoflop["a"] == pytest.approx(0.5, abs=0.05) and isoflop["a_ci_low"] < isoflop["a_ci_high"]
    assert isoflop["flops_per_param_sample"] == pytest.approx(6.0, rel=0.01), "k measured from the runs"
    assert [b["inside"] for b in isoflop["budgets"]] == [True] * 4
    assert summary["joint"]["estimates"]["alpha"]["estimate"] == pytest.approx(0.4, rel=0.1)
    assert summary["credible"] is True, summary["reasons"]
    assert "**IsoFLOP profiles** (4 budgets" in markdown(study)
    files = write_study(study, tmp_path / "out")
    assert sorted(p.name for p in files) == sorted(["scaling.json", "scaling.csv", *PLOTS])
    report = fit_isoflop_table(tmp_path / "out" / "scaling.csv", resamples=0)  # its own table, as any CSV
    assert report["a"] == pytest.approx(isoflop["a"])


def test_budgets_whose_optimum_is_below_the_smallest_size_are_not_credible(tmp_path: Path) -> None:
    budgets = [1.5e6, 6e6, 2.4e7]  # N_opt 500, 1,000, 2,000: at or below the smallest size
    cells = write_budget_study(tmp_path, budgets, seeds=1)
    study = analyse(collect(list(BUDGET_LADDER), [0], tmp_path, data_sizes=cells), n_boot=20)
    assert not study.verdict.credible
    assert {"minimum_outside", "no_minimum", "no_isoflop_fit"} & set(study.verdict.flags)
