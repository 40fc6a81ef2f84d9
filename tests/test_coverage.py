"""Coverage of the summary's intervals, measured by simulating experiments from real per-seed
curves (biv.report.coverage): the BIV and L2 test-MSE curves of 30 seeds of
config/paper-lite-seeds.yaml, Bike's every 4th step (tests/data/bike-seed-curves.npz, written by
``python -m biv.report.coverage results bike biv l2 --every 4 --save ...``) and reduced UTKF's
40 evaluated steps (tests/data/utkf-seed-curves.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biv.report import coverage
from biv.report.statistics import cross_fitted, curve_min, mean_ci, min_interval

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def bike():
    return coverage.load_pair(DATA / "bike-seed-curves.npz")


def test_the_curves_are_paper_lites_bike_runs(bike):
    values, base, about = bike
    assert values.shape == base.shape == (30, 700)
    assert (about["experiment"], about["loss"], about["baseline"], about["every"]) == (
        "bike",
        "biv",
        "l2",
        4,
    )
    for role, loss in (("loss_params", "biv"), ("baseline_params", "l2")):
        params = about[role]
        assert params["loss_name"] == loss and params["noise"]["name"] == "bike-gamma"
        assert params["training"]["eval_protocol"] == "original"
        assert params["training"]["epochs"] == 100 and params["training"]["batch_size"] == 256


def test_smooth_is_a_centred_moving_average():
    np.testing.assert_allclose(coverage.smooth(np.array([0.0, 3.0, 6.0, 3.0]), 3), [1.5, 3, 4, 4.5])


def test_simulated_seeds_have_the_real_mean_and_covariance(bike):
    """Across steps and across the two losses: the covariance of the real seeds' residuals."""
    values, base = bike[0][:, ::20], bike[1][:, ::20]
    population = coverage.Population.from_curves(values, base, 1)
    drawn = population.draw(40_000, np.random.default_rng(1)).reshape(40_000, -1)
    real = np.stack([values, base], axis=1).reshape(len(values), -1)
    np.testing.assert_allclose(drawn.mean(axis=0), real.mean(axis=0), atol=5e-4)
    expected = np.cov(real, rowvar=False)
    np.testing.assert_allclose(np.cov(drawn, rowvar=False), expected, atol=0.03 * expected.max())
    with pytest.raises(ValueError, match="at least 2 real seeds"):
        coverage.Population.from_curves(values[:1], base[:1], 1)


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize(
    "name, shape, window, repeats",
    [("bike", (30, 700), 35, 2000), ("utkf", (30, 40), 3, 5000)],
)
def test_every_interval_covers_as_stated(name, shape, window, repeats, seeds):
    """The windows are the CLI's (1/20 of the steps, odd); UTKF's curves are short and cheap,
    so more simulated experiments."""
    values, base, about = coverage.load_pair(DATA / f"{name}-seed-curves.npz")
    assert values.shape == base.shape == shape and about["experiment"] == name
    population = coverage.Population.from_curves(values, base, window)
    measured = coverage.coverage(population, seeds, repeats=repeats)
    assert set(measured) == set(coverage.INTERVALS) == set(coverage.STATED)
    low = {name: share for name, share in measured.items() if share < coverage.STATED[name]}
    assert not low, measured


def test_the_t_interval_at_the_best_step_alone_would_not_cover(bike):
    """Why the best's interval is a union: the seeds' values at the step where they happen to be
    lowest give an interval that misses the population's best too often at 5 seeds."""
    values, base, _ = bike
    population = coverage.Population.from_curves(values, base, 35)
    rng = np.random.default_rng(0)
    truth = curve_min(population.mean[0])[0]
    hits = 0
    for _ in range(1000):
        curves = population.draw(5, rng)[:, 0]
        _, low, high = mean_ci(curves[:, curve_min(curves.mean(axis=0))[1]])
        hits += low <= truth <= high
    assert hits / 1000 < 0.9


def test_cross_fitted_values_take_the_step_the_other_seeds_pick():
    values = np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 0.5], [2.0, 2.0, 2.0]])
    # without seed 0 the mean curve is (1.5, 2.5, 1.25): step 2; without 1: (2.5, 1.5, 2): step
    # 1; without 2: (2, 2, 1.25): step 2
    np.testing.assert_array_equal(cross_fitted(values), [2.0, 3.0, 2.0])
    # the union of the t intervals of the values at the mean curve's best step (2) and of the
    # cross-fitted values
    _, low, high = mean_ci(values[:, 2])
    _, cross_low, cross_high = mean_ci([2.0, 3.0, 2.0])
    assert min_interval(values, 2) == (min(low, cross_low), max(high, cross_high))
    assert np.isnan(min_interval(values[:1], 2)).all()
    assert np.isnan(min_interval(values, -1)).all()
    diverged = values.copy()
    diverged[0] = np.nan
    assert np.isnan(cross_fitted(diverged)[0])


def test_population_values_of_the_quantities(bike):
    values, base, _ = bike
    population = coverage.Population.from_curves(values, base, 35)
    truth = population.truth(np.random.default_rng(0), draws=4000)
    best, best_base = population.mean[0].min(), population.mean[1].min()
    assert truth["min_of_mean_curve"] == best
    assert truth["rel_improvement_of_min_of_mean_curve"] == pytest.approx(1 - best / best_base)
    assert truth["paired_diff_of_finals"] == pytest.approx(
        population.mean[0, -1] - population.mean[1, -1]
    )
    # a seed's own minimum lies below the mean curve's
    assert truth["mean_of_seed_mins"] < best


def test_save_and_load_keep_the_curves_and_their_description(tmp_path):
    values, base = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    coverage.save_pair(tmp_path / "pair.npz", values, base, {"loss": "biv"})
    loaded = coverage.load_pair(tmp_path / "pair.npz")
    np.testing.assert_array_equal(loaded[0], values)
    np.testing.assert_array_equal(loaded[1], base)
    assert loaded[2] == {"loss": "biv"}
