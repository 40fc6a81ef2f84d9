"""Scoring on noisy test labels with known variances: the clean-MSE estimate, its standard
error, the files that carry them, and the labels of tables and figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from biv.report import figure_text
from biv.report.tables import summary_table
from biv.train.metrics import (
    RunMetrics,
    clean_mse_est_se,
    eval_errors,
    final_scores,
    metrics_csv,
    predictions_csv,
)


def run_metrics(sums: list[tuple[float, float]]) -> RunMetrics:
    metrics = RunMetrics()
    for step, (squares, absolute) in enumerate(sums, 1):
        metrics.test_sums.append(torch.tensor([squares, absolute], dtype=torch.float64))
        metrics.eval_steps.append(step)
        metrics.losses.append(torch.tensor(0.5))
    return metrics


def test_estimate_is_the_noisy_mse_minus_the_mean_variance():
    var = torch.tensor([0.5, 1.5, 1.0, 3.0])  # mean 1.5
    errors = eval_errors(run_metrics([(40.0, 8.0), (20.0, 6.0)]), 4, 2.0, False, var)
    assert errors.mse_raw == [10.0, 5.0]
    assert errors.clean_mse_est_raw == [8.5, 3.5]
    assert errors.clean_mse_est == [8.5 / 4, 3.5 / 4]  # normalized: / y_std^2
    assert errors.scored == errors.clean_mse_est
    text = metrics_csv(run_metrics([(40.0, 8.0), (20.0, 6.0)]), errors, 2, 2)
    rows = pd.read_csv(pd.io.common.StringIO(text))
    test = rows[rows["split"] == "test"]
    assert set(test["metric"]) == {
        "noisy_mse",
        "noisy_mae",
        "noisy_mse_raw",
        "noisy_mae_raw",
        "clean_mse_est",
        "clean_mse_est_raw",
    }
    assert test.query("step == 2 and metric == 'clean_mse_est_raw'")["value"].item() == 3.5
    clean = eval_errors(run_metrics([(40.0, 8.0)]), 4, 2.0, False)
    assert clean.clean_labels and clean.scored == clean.mse == [10.0 / 4]


def test_standard_error_of_known_terms():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0])
    y = torch.tensor([0.0, 0.0, 0.0, 0.0])
    var = torch.tensor([0.0, 2.0, 6.0, 12.0])  # terms (f - y)^2 - var = 1, 2, 3, 4
    assert clean_mse_est_se(y, pred, var) == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert math.isnan(clean_mse_est_se(y[:1], pred[:1], var[:1]))


def test_estimate_is_unbiased_and_its_standard_error_is_its_spread():
    """Over repeated noisy test sets, the estimates centre on the true clean MSE and scatter
    as much as the reported standard error says."""
    gen = torch.Generator().manual_seed(0)
    m, repeats = 2000, 400
    clean = torch.randn(m, generator=gen, dtype=torch.float64)
    pred = clean + 0.3 * torch.randn(m, generator=gen, dtype=torch.float64)
    true = float((pred - clean).square().mean())
    var = torch.where(torch.rand(m, generator=gen) < 0.3, 1.0, 0.01).double()
    estimates, ses = [], []
    for _ in range(repeats):
        noisy = clean + var.sqrt() * torch.randn(m, generator=gen, dtype=torch.float64)
        estimates.append(float(((pred - noisy).square() - var).mean()))
        ses.append(clean_mse_est_se(noisy, pred, var))
    spread = np.std(estimates, ddof=1)
    assert abs(np.mean(estimates) - true) < 4 * spread / math.sqrt(repeats)
    assert np.mean(ses) == pytest.approx(spread, rel=0.1)
    assert abs(np.mean(estimates) - true) < 0.1 * true  # unlike the noisy MSE:
    assert float(((pred - noisy).square()).mean()) > true + 0.2


def test_final_scores_and_predictions_name_the_noisy_quantities():
    var = torch.tensor([0.5, 1.5])
    errors = eval_errors(run_metrics([(4.0, 2.0), (2.0, 2.0)]), 2, 1.0, True, var)
    y, pred = torch.tensor([1.0, 2.0]), torch.tensor([1.5, 1.0])
    scores = final_scores(errors, y, pred, var)
    assert scores["test_labels"] == "noisy" and "final_test_mse" not in scores
    assert scores["final_noisy_mse_raw"] == 1.0 and scores["final_clean_mse_est_raw"] == 0.0
    assert scores["best_clean_mse_est"] == 0.0 and scores["best_step"] == 2
    terms = np.array([0.25 - 0.5, 1.0 - 1.5])
    assert scores["final_clean_mse_est_se_raw"] == pytest.approx(np.std(terms, ddof=1) / 2**0.5)
    text = predictions_csv(y, pred, var)
    assert text.splitlines()[:2] == ["index,y_noisy,var,y_pred", "0,1,0.5,1.5"]
    assert predictions_csv(y, pred, None).splitlines()[1] == "0,1,1.5"
    clean = final_scores(eval_errors(run_metrics([(4.0, 2.0)]), 2, 1.0, True), y, pred, None)
    assert clean["test_labels"] == "clean" and clean["final_test_mse"] == 2.0


def test_summary_names_the_metric_and_carries_the_test_standard_error():
    rows = [
        {"experiment": e, "loss": "l2", "seed": s, "step": t, "value": v, "metric": metric}
        for e, metric in (("mine", "clean_mse_est"), ("paper", "mse"))
        for s in (1, 2)
        for t, v in ((1, 0.5 + s), (2, 0.25 + s))
    ]
    runs = pd.DataFrame(
        {
            "experiment": ["mine", "mine", "paper", "paper"],
            "loss": ["l2"] * 4,
            "final_clean_mse_est_se": [0.1, 0.3, np.nan, np.nan],
        }
    )
    experiments = {
        e: {"baseline": "l2", "sweep": None, "dataset": e, "noise": None} for e in ("mine", "paper")
    }
    table = summary_table(pd.DataFrame(rows), experiments, {}, runs).set_index("experiment")
    assert table.loc["mine", "metric"] == "clean_mse_est"
    assert table.loc["mine", "final_of_mean_curve_test_se"] == pytest.approx(0.2)
    assert table.loc["paper", "metric"] == "mse"
    assert math.isnan(table.loc["paper", "final_of_mean_curve_test_se"])


def test_figures_say_which_quantity_they_show(checked_figure):
    assert figure_text.axis_quantity({"mse"}) == figure_text.AXIS_QUANTITY
    assert figure_text.axis_quantity({"clean_mse_est"}).startswith("Estimated clean test MSE")
    figure = checked_figure({"panels": [{"experiment": "e"}]}, {"e": {"l2": "mse"}})
    caption = figure_text.learning_curves_caption(figure, {"clean_mse_est"})
    assert caption.startswith("Estimated clean test MSE") and "E[(f − ỹ)²]" in caption
    assert "Estimated" not in figure_text.learning_curves_caption(figure)


def test_learning_curves_label_the_estimate(checked_figure, tmp_path):
    from biv.report import figure_tables, plots

    curves = pd.DataFrame(
        [
            {"experiment": "e", "loss": loss, "seed": 1, "step": step, "value": value}
            for loss in ("l2", "biv")
            for step, value in ((10, 0.4), (20, 0.3))
        ]
    )
    figure = checked_figure({"panels": [{"experiment": "e"}]}, {"e": {"l2": "mse", "biv": "biv"}})
    estimated = figure_tables.learning_curve_table(figure, curves.assign(metric="clean_mse_est"))
    ax = plots.draw_learning_curves(figure, estimated, {}).axes[0]
    assert ax.get_ylabel() == "Estimated clean test MSE (normalized units),\nmean of 1 seed"
    table = figure_tables.learning_curve_table(figure, curves)
    ax = plots.draw_learning_curves(figure, table, {}).axes[0]
    assert ax.get_ylabel().startswith("Clean test MSE (normalized units)")
