"""Summary metrics on hand-made curves whose mean of per-seed minima differs from the minimum of
the seed-averaged curve (the paper's best)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from biv.report import html, statistics, tables
from biv.report.tables import summary_table

T_975_1 = 12.706204736174698  # Student-t 97.5 % quantile, 1 degree of freedom
# Two seeds, evaluation at steps 10, 20, 30.
BIV = {1: [3.0, 1.0, 2.0], 2: [1.0, 2.4, 1.8]}  # mean curve [2, 1.7, 1.9]; seed minima 1, 1
L2 = {1: [4.0, 2.0, 4.0], 2: [4.0, 4.0, 2.0]}  # mean curve [4, 3, 3]; seed minima 2, 2


def curves(spec: dict) -> pd.DataFrame:
    """{(experiment, loss): {seed: values at steps 10, 20, ...}} as a long curve table."""
    rows = [
        {"experiment": exp, "loss": loss, "seed": seed, "step": 10 * (i + 1), "value": v}
        for (exp, loss), seeds in spec.items()
        for seed, values in seeds.items()
        for i, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def experiment(baseline="l2", sweep=None) -> dict:
    return {"baseline": baseline, "sweep": sweep}


@pytest.fixture
def summary() -> pd.DataFrame:
    table = summary_table(curves({("e", "biv"): BIV, ("e", "l2"): L2}), {"e": experiment()})
    return table.set_index("loss")


def test_paper_best_is_the_minimum_of_the_mean_curve(summary):
    biv, l2 = summary.loc["biv"], summary.loc["l2"]
    assert (biv["min_of_mean_curve"], biv["min_of_mean_curve_step"]) == (pytest.approx(1.7), 20)
    assert (l2["min_of_mean_curve"], l2["min_of_mean_curve_step"]) == (3.0, 20)  # first of a tie
    # the mean of per-seed minima is another, lower quantity
    assert biv["mean_of_seed_mins"] == 1.0 and l2["mean_of_seed_mins"] == 2.0
    assert biv["mean_of_seed_mins_ci_low"] == biv["mean_of_seed_mins_ci_high"] == 1.0
    assert (biv["final_of_mean_curve"], biv["final_of_mean_curve_step"]) == (1.9, 30)
    half = T_975_1 * 0.1  # finals 2 and 1.8: std/sqrt(2) = 0.1
    assert biv["final_of_mean_curve_ci_low"] == pytest.approx(1.9 - half, rel=1e-12)
    assert biv["final_of_mean_curve_ci_high"] == pytest.approx(1.9 + half, rel=1e-12)
    assert biv["n_seeds"] == 2


def test_interval_of_the_minimum_holds_the_t_interval_at_its_step(summary):
    # BIV at step 20: seeds 1.0 and 2.4, std/sqrt(2) = 0.7; L2: 2 and 4, std/sqrt(2) = 1. The
    # cross-fitted values (each seed at the other's best step: BIV 3.0 and 2.4, L2 4 and 2) give
    # narrower intervals here, so the union is the interval at the step
    biv, l2 = summary.loc["biv"], summary.loc["l2"]
    assert biv["min_of_mean_curve_ci_low"] == pytest.approx(1.7 - T_975_1 * 0.7)
    assert biv["min_of_mean_curve_ci_high"] == pytest.approx(1.7 + T_975_1 * 0.7)
    assert l2["min_of_mean_curve_ci_low"] == pytest.approx(3 - T_975_1)
    assert l2["min_of_mean_curve_ci_high"] == pytest.approx(3 + T_975_1)


def test_improvement_over_l2_in_the_papers_definition_and_per_seed(summary):
    biv = summary.loc["biv"]
    assert (biv["baseline"], biv["baseline_experiment"], biv["n_paired"]) == ("l2", "e", 2)
    assert biv["rel_improvement_of_min_of_mean_curve"] == pytest.approx(1 - 1.7 / 3)
    # ratio 1.7 / 3 of the values at the two steps, BIV [1, 2.4] and L2 [2, 4]: linearized
    # d = BIV - ratio * L2 = [-2/15, 2/15], std/sqrt(2) = 2/15, divided by the L2 mean 3
    half = T_975_1 * 2 / 15 / 3
    assert biv["rel_improvement_of_min_of_mean_curve_ci_low"] == pytest.approx(1 - 1.7 / 3 - half)
    assert biv["rel_improvement_of_min_of_mean_curve_ci_high"] == pytest.approx(1 - 1.7 / 3 + half)
    # each seed: 1 - 1/2
    assert biv["mean_of_seed_rel_improvements"] == 0.5
    assert biv["paired_diff_of_seed_mins_mean"] == -1.0
    # finals 2 - 4 and 1.8 - 2: mean -1.1, std/sqrt(2) = 0.9
    assert biv["paired_diff_of_finals_mean"] == pytest.approx(-1.1)
    assert biv["paired_diff_of_finals_ci_low"] == pytest.approx(-1.1 - T_975_1 * 0.9)
    assert biv["paired_diff_of_finals_ci_high"] == pytest.approx(-1.1 + T_975_1 * 0.9)
    l2 = summary.loc["l2"]
    assert l2["rel_improvement_of_min_of_mean_curve"] == 0.0
    assert l2["paired_diff_of_seed_mins_mean"] == 0.0


def test_columns_are_the_documented_ones_and_results_are_deterministic(summary):
    assert set(summary.reset_index().columns) == set(tables.SUMMARY_COLUMNS)
    table = summary_table(curves({("e", "biv"): BIV}), {"e": experiment()})
    assert list(table.columns) == list(tables.SUMMARY_COLUMNS)
    again = summary_table(curves({("e", "biv"): BIV, ("e", "l2"): L2}), {"e": experiment()})
    pd.testing.assert_frame_equal(again.set_index("loss"), summary)


def test_mean_of_seed_minima_never_exceeds_minimum_of_mean_curve():
    rng = np.random.default_rng(3)
    values = {seed: list(rng.gamma(2.0, size=40)) for seed in range(5)}
    row = summary_table(curves({("e", "l2"): values}), {"e": experiment()}).iloc[0]
    assert row["mean_of_seed_mins"] < row["min_of_mean_curve"]
    matrix = np.array(list(values.values()))
    assert row["min_of_mean_curve"] == pytest.approx(matrix.mean(axis=0).min())
    assert row["mean_of_seed_mins"] == pytest.approx(matrix.min(axis=1).mean())
    assert row["min_of_mean_curve_ci_low"] <= row["min_of_mean_curve"]


def test_single_seed_and_no_baseline_give_no_intervals():
    spec = {("one", "l2"): {1: [2.0, 1.0]}, ("free", "biv"): BIV}
    table = summary_table(
        curves(spec), {"one": experiment(), "free": experiment(baseline=None)}
    ).set_index("experiment")
    one = table.loc["one"]
    assert one["min_of_mean_curve"] == one["mean_of_seed_mins"] == 1.0
    assert np.isnan(one["min_of_mean_curve_ci_low"]) and np.isnan(one["final_of_mean_curve_ci_low"])
    assert np.isnan(one["rel_improvement_of_min_of_mean_curve_ci_low"])
    free = table.loc["free"]
    assert free["baseline"] == "" and free["n_paired"] == 0
    assert np.isnan(free["rel_improvement_of_min_of_mean_curve"])


def test_sweep_points_compare_with_the_base_experiments_l2_on_the_same_seeds():
    experiments = {
        "base": experiment(),
        "eps__epsilon-0p1": experiment(baseline=None, sweep="eps"),
        "bs__batchsize-16": experiment(baseline=None, sweep="bs"),
    }
    base = {"experiment": "base", "losses": ["biv"]}
    sweeps = {
        "eps": {**base, "name": "eps", "vary": {"losses.biv.epsilon": [0.1]}},
        "bs": {**base, "name": "bs", "vary": {"training.batch_size": [16]}},
    }
    spec = {
        ("base", "l2"): {**L2, 3: [9.0, 9.0, 9.0]},  # seed 3 has no sweep run: not paired
        ("eps__epsilon-0p1", "biv"): BIV,
        ("bs__batchsize-16", "biv"): BIV,
    }
    table = summary_table(curves(spec), experiments, sweeps).set_index("experiment")
    eps = table.loc["eps__epsilon-0p1"]
    assert (eps["baseline"], eps["baseline_experiment"], eps["n_paired"]) == ("l2", "base", 2)
    assert eps["rel_improvement_of_min_of_mean_curve"] == pytest.approx(1 - 1.7 / 3)
    # another batch size: the base's L2 is no comparison
    assert table.loc["bs__batchsize-16", "baseline"] == ""
    assert np.isnan(table.loc["bs__batchsize-16", "rel_improvement_of_min_of_mean_curve"])


def test_curves_use_common_steps_and_ignore_non_finite_values():
    spec = {("e", "l2"): {1: [np.inf, 2.0, 1.0, 5.0], 2: [np.nan, 2.0, 3.0]}}
    table = curves(spec)
    seeds, steps, values = statistics.seed_matrix(table)
    assert list(seeds) == [1, 2] and list(steps) == [20, 30]  # step 40 lacks seed 2
    assert statistics.curve_min(np.array([np.nan, np.inf, 3.0, 2.0, 2.0])) == (2.0, 3)
    assert statistics.curve_min(np.array([np.nan, np.inf])) == (
        pytest.approx(np.nan, nan_ok=True),
        -1,
    )


def test_ratio_ci_is_the_delta_method_of_paired_means():
    values, base = np.array([1.0, 2.0, 4.0]), np.array([2.0, 3.0, 4.0])
    ratio, low, high = statistics.ratio_ci(values, base)
    d = values - 7 / 9 * base
    half = 4.302652729911275 * d.std(ddof=1) / np.sqrt(3) / 3  # t 97.5 %, 2 degrees of freedom
    assert (ratio, low, high) == pytest.approx((7 / 9, 7 / 9 - half, 7 / 9 + half))
    assert np.isnan(statistics.ratio_ci(values[:1], base[:1])[1])


def test_mean_ci_one_and_two_dimensional():
    mean, low, high = statistics.mean_ci([1.0, 3.0])
    assert (mean, low, high) == (2.0, pytest.approx(2 - T_975_1), pytest.approx(2 + T_975_1))
    assert isinstance(mean, float)
    mean, low, high = statistics.mean_ci(np.array([[1.0, 5.0], [3.0, 5.0]]), axis=0)
    np.testing.assert_allclose(mean, [2.0, 5.0])
    np.testing.assert_allclose(low, [2 - T_975_1, 5.0])
    assert np.isnan(statistics.mean_ci([4.0])[1]) and statistics.mean_ci([4.0])[0] == 4.0
    assert np.isnan(statistics.mean_ci([])[0])


def test_read_curves_takes_the_clean_test_mse_of_each_run(tmp_path):
    files = []
    for seed, value in ((1, 0.5), (2, 0.25)):
        run = tmp_path / f"folder{seed}"  # what a run is comes from the plan, not its path
        run.mkdir()
        files.append(run / "metrics.csv")
        (run / "metrics.csv").write_text(
            "step,epoch,split,metric,value\n"
            "1,1,train,loss,9.0\n"
            f"1,1,test,mse,{value}\n"
            "1,1,test,mae,7.0\n"
            "1,1,test,mse_raw,8.0\n"
            "2,1,train,skipped,1\n"
            f"2,1,test,mse,{value / 2}\n"
        )
    table = tables.read_curves(files, [("exp", "biv", 1), ("exp", "biv", 2)])
    assert list(table.columns) == ["experiment", "loss", "seed", "step", "value", "metric"]
    assert table.values.tolist() == [
        ["exp", "biv", 1, 1, 0.5, "mse"],
        ["exp", "biv", 1, 2, 0.25, "mse"],
        ["exp", "biv", 2, 1, 0.25, "mse"],
        ["exp", "biv", 2, 2, 0.125, "mse"],
    ]


def test_summary_html_shows_values_intervals_and_definitions(summary):
    text = html.summary_html(summary.reset_index())
    assert text.startswith("<!DOCTYPE html>") and "<table" in text
    assert "1.7 [-7.194, 10.59]" in text  # BIV: min of mean curve [t interval at its step]
    assert "43.3% [-13.1%, 99.8%]" in text  # the paper's improvement
    assert "<code>mean_of_seed_mins</code>" in text


def test_table_modules_import_neither_torch_nor_plotting():
    code = (
        "import sys, biv.report.tables, biv.report.reproduction, biv.report.plots; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_run_files_of_a_loss_in_a_finished_workflows_results(tmp_path):
    """By seed (seed10 after seed2, across packs), only the loss asked for."""
    for pack, seed in (("seeds6-10", 10), ("seeds1-5", 2), ("seeds1-5", 1)):
        folder = tmp_path / "runs" / "e" / "biv" / pack / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "metrics.csv").write_text("")
    (tmp_path / "runs" / "e" / "l2" / "seeds1-5" / "seed1").mkdir(parents=True)
    files = tables.results_run_files(tmp_path, "e", "biv", "metrics.csv")
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "runs/e/biv/seeds1-5/seed1/metrics.csv",
        "runs/e/biv/seeds1-5/seed2/metrics.csv",
        "runs/e/biv/seeds6-10/seed10/metrics.csv",
    ]
    with pytest.raises(FileNotFoundError, match="no runs of e/l2 under .*runs"):
        tables.results_run_files(tmp_path, "e", "l2", "metrics.csv")
