"""Scoring on noisy test labels with known variances: the clean-MSE estimate, its standard
error, the files that carry them, and the labels of tables and figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from biv.report import figure_text
from biv.report.tables import read_noisy_predictions, summary_table
from biv.train.metrics import (
    RunMetrics,
    clean_mse_est_se,
    eval_errors,
    eval_weights,
    final_scores,
    metrics_csv,
    paired_diff_se,
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


def test_eval_weights_are_those_of_the_logged_mse():
    assert eval_weights(4, "standard", 3).tolist() == [0.25] * 4
    # original: batches of 2, 2, 1 -> the mean of three batch means
    assert eval_weights(5, "original", 2).tolist() == pytest.approx([1 / 6] * 4 + [1 / 3])
    assert eval_weights(4, "original", 2).tolist() == [0.25] * 4
    with pytest.raises(ValueError, match="training.eval_protocol"):
        eval_weights(4, "mine", 2)


class Fixed(torch.nn.Module):
    """A "model" whose predictions are its input's one feature, as one pack member (1, n)."""

    def forward(self, x):
        return x.T


class Labels:
    """What evaluation reads of a run's data (biv.train.evaluation.EvalData)."""

    def __init__(self, y):
        self.y_test = y

    def inputs(self, x):
        return x


def centred_gamma(gen, var):
    """Skewed noise of variance ``var``: a shape-1 gamma (exponential) draw, centred and scaled."""
    return var.sqrt() * (torch.empty_like(var).exponential_(generator=gen) - 1)


def binary_uniform(gen, var):
    """Noise of variance ``var``: half of the labels +-sigma, the others uniform on
    +-sqrt(3) sigma."""
    sign = torch.randint(0, 2, var.shape, generator=gen, dtype=torch.float64) * 2 - 1
    uniform = (torch.rand(var.shape, generator=gen, dtype=torch.float64) * 2 - 1) * 3**0.5
    binary = torch.rand(var.shape, generator=gen, dtype=torch.float64) < 0.5
    return var.sqrt() * torch.where(binary, sign, uniform)


def rms(values) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


M, BATCH = 300, 128  # original protocol: test batches of 128, 128 and a short one of 44


def scored(pred, labels, var):
    """The product's numbers for one noisy test set: the original protocol's error sums
    (biv.train.evaluation.evaluate), the clean-MSE estimate and its standard error."""
    from biv.train.evaluation import evaluate

    chunks = list(pred.float()[:, None].split(BATCH))
    metrics = RunMetrics()
    sums = evaluate(Fixed(), Labels(labels), chunks, test_batch=BATCH, protocol="original")
    metrics.test_sums.append(sums[0])
    metrics.eval_steps.append(1)
    metrics.losses.append(torch.tensor(0.0))
    weights = eval_weights(M, "original", BATCH)
    errors = eval_errors(metrics, M, 1.0, False, var, weights)
    scores = final_scores(errors, labels, pred, var)
    return errors, scores["final_clean_mse_est_raw"], scores["final_clean_mse_est_se_raw"]


@pytest.mark.parametrize(
    ("variances", "noise"),
    [
        # gamma variances (shape 1) with skewed gamma noise
        (lambda g: torch.empty(M, dtype=torch.float64).exponential_(generator=g), centred_gamma),
        # the UTKF panel's kind of variances: half U(0, 1), half a large constant; binary or
        # uniform noise
        (
            lambda g: torch.where(
                torch.rand(M, generator=g) < 0.5,
                torch.rand(M, generator=g, dtype=torch.float64),
                torch.tensor(4.0, dtype=torch.float64),
            ),
            binary_uniform,
        ),
    ],
)
def test_estimate_is_unbiased_under_the_original_protocol(variances, noise):
    """Over repeated noisy test labels, the product's estimate (original protocol, a short last
    test batch that holds the noisiest labels) centres on the clean MSE the original protocol
    logs, within 4 standard errors of the simulation's mean, and scatters as much as its
    reported standard error says (root mean square: its square estimates the variance); the
    plain mean of sigma^2 would be off by far more."""
    gen = torch.Generator().manual_seed(0)
    repeats = 1000
    clean = torch.randn(M, generator=gen, dtype=torch.float64)
    pred = clean + 0.3 * torch.randn(M, generator=gen, dtype=torch.float64)
    var = variances(gen)
    var[2 * BATCH :] *= 10  # the short last batch: noisier labels
    true = scored(pred, clean, var)[0].mse_raw[0]
    estimates, ses, plain = [], [], []
    for _ in range(repeats):
        labels = clean + noise(gen, var)
        errors, estimate, se = scored(pred, labels, var)
        estimates.append(estimate)
        ses.append(se)
        plain.append(errors.mse_raw[0] - float(var.mean()))
    tolerance = 4 * np.std(estimates, ddof=1) / math.sqrt(repeats)
    assert abs(np.mean(estimates) - true) < tolerance
    assert abs(np.mean(plain) - true) > 5 * tolerance
    assert rms(ses) == pytest.approx(np.std(estimates, ddof=1), rel=0.15)


def test_paired_difference_has_its_own_smaller_standard_error():
    """Two predictors scored on the same noisy labels: the difference of their estimates
    scatters as its paired standard error says, far less than either estimate."""
    gen = torch.Generator().manual_seed(1)
    clean = torch.randn(M, generator=gen, dtype=torch.float64)
    pred = clean + 0.3 * torch.randn(M, generator=gen, dtype=torch.float64)
    base = pred + 0.2 * torch.randn(M, generator=gen, dtype=torch.float64)
    var = torch.empty(M, dtype=torch.float64).exponential_(generator=gen)
    weights = eval_weights(M, "original", BATCH)
    diffs, ses, single = [], [], []
    for _ in range(400):
        labels = clean + centred_gamma(gen, var)
        (_, mine, se), (_, theirs, _) = scored(pred, labels, var), scored(base, labels, var)
        diffs.append(mine - theirs)
        ses.append(paired_diff_se(labels, pred, base, weights))
        single.append(se)
    spread = np.std(diffs, ddof=1)
    assert rms(ses) == pytest.approx(spread, rel=0.15)
    assert rms(ses) < 0.5 * rms(single)


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


def test_summary_carries_the_paired_difference_standard_error(tmp_path):
    """From the runs' files: predictions.csv, params.json's evaluation protocol and run.json's
    y_std; normalized, the mean over the paired seeds."""
    gen = torch.Generator().manual_seed(2)
    y, var = torch.randn(5, generator=gen), torch.rand(5, generator=gen).double()
    preds = {(loss, s): torch.randn(5, generator=gen) for loss in ("l2", "biv") for s in (1, 2)}
    files = []
    for (loss, seed), pred in preds.items():
        folder = tmp_path / loss / str(seed)
        folder.mkdir(parents=True)
        (folder / "p.csv").write_text(predictions_csv(y, pred, var))
        training = {"eval_protocol": "original", "eval_batch_size": 2}
        (folder / "params.json").write_text(json.dumps({"training": training}))
        (folder / "run.json").write_text(json.dumps({"run": {"y_std": 2.0}}))
        files.append((folder / "p.csv", folder / "params.json", folder / "run.json"))
    clean = tmp_path / "clean.csv"
    clean.write_text(predictions_csv(y, y, None))
    files.append((clean, files[0][1], files[0][2]))
    ids = [("e", loss, seed) for loss, seed in preds] + [("e", "cutoff", 1)]
    predictions = read_noisy_predictions(*zip(*files, strict=True), ids)
    assert ("e", "cutoff", 1) not in predictions
    curves = pd.DataFrame(
        [{"experiment": "e", "loss": loss, "seed": s, "step": 1, "value": 0.5} for loss, s in preds]
    )
    experiments = {"e": {"baseline": "l2", "sweep": None}}
    table = summary_table(curves, experiments, {}, None, predictions).set_index("loss")
    weights = eval_weights(5, "original", 2)
    expected = np.mean(
        [paired_diff_se(y, preds["biv", s], preds["l2", s], weights) / 4 for s in (1, 2)]
    )
    assert table.loc["biv", "paired_diff_of_finals_test_se"] == pytest.approx(expected, rel=1e-6)
    assert table.loc["l2", "paired_diff_of_finals_test_se"] == 0.0
    assert math.isnan(summary_table(curves, experiments).loc[0, "paired_diff_of_finals_test_se"])


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
