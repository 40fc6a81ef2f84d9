"""Done-when test of your own data: a table from a known function with known heteroscedastic
noise (examples/own-data/make_sensors.py), run through the whole workflow with and without its
clean_target. BIV must beat L2 on the clean MSE, and the clean-MSE estimate from the noisy test
labels must agree with the true clean MSE within its reported standard error (3 of them)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from biv.data import load_prepared

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ["temperature", "humidity", "wind", "hour"]
SEEDS = [1, 2]
TEST_ROWS = 40000  # the estimate's standard error shrinks as 1/sqrt(test rows)


def make_table():
    spec = importlib.util.spec_from_file_location(
        "make_sensors", ROOT / "examples" / "own-data" / "make_sensors.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_table(rows=2000 + TEST_ROWS, seed=7)


def config() -> dict:
    table = {
        "kind": "table",
        "path": "table.csv",
        "target": "y",
        "variance": "y_var",
        "features": FEATURES,
        "categorical": ["site"],
        "test_size": TEST_ROWS,
    }
    experiment = {
        "model": "mlp",
        "losses": ["l2", "biv"],
        "seeds": SEEDS,
        "training": {"batch_size": 128, "epochs": 40, "eval_every": 16},
    }
    return {
        "datasets": {"clean": {**table, "clean_target": "y_true"}, "noisy": table},
        "models": {"mlp": {"name": "mlp", "hidden": [64, 64], "batchnorm": False}},
        "losses": {"l2": {"type": "mse"}, "biv": {"type": "biv", "epsilon": 0.5}},
        "experiments": {
            "with-clean": {**experiment, "dataset": "clean"},
            "noisy-only": {**experiment, "dataset": "noisy"},
        },
        "figures": {"curves": {"panels": [{"experiment": "noisy-only"}]}},
    }


@pytest.fixture(scope="module")
def results(copy_workflow, tmp_path_factory) -> Path:
    root = copy_workflow(tmp_path_factory.mktemp("table-workflow"))
    make_table().to_csv(root / "table.csv", index=False)
    (root / "table.yaml").write_text(yaml.safe_dump(config()))
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "table.yaml"]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return root / "results"


def test_biv_beats_l2_on_the_clean_test_mse(results):
    summary = pd.read_csv(results / "tables" / "summary.csv").set_index(["experiment", "loss"])
    assert set(summary.loc["with-clean", "metric"]) == {"mse"}
    assert set(summary.loc["noisy-only", "metric"]) == {"clean_mse_est"}
    for experiment in ("with-clean", "noisy-only"):
        best = summary.loc[experiment, "min_of_mean_curve"]
        assert best["biv"] < best["l2"], (experiment, best)
        assert summary.loc[(experiment, "biv"), "rel_improvement_of_min_of_mean_curve"] > 0.1


def true_clean_mse(results: Path, run: Path) -> float:
    """The clean test MSE (raw units) of a run's final predictions, from the table's y_true."""
    data = load_prepared(results / "data" / "noisy.npz")
    clean = pd.read_csv(results.parent / "table.csv")["y_true"].to_numpy()
    predictions = pd.read_csv(run / "predictions.csv")
    assert list(predictions.columns) == ["index", "y_noisy", "var", "y_pred"]
    y = clean[data["test_index"].numpy()]
    return float(np.mean((predictions["y_pred"].to_numpy() - y) ** 2))


def test_clean_mse_estimate_agrees_with_the_true_clean_mse(results):
    true = {}
    for loss in ("l2", "biv"):
        for seed in SEEDS:
            run = results / "runs" / "noisy-only" / loss / "seeds1-5" / f"seed{seed}"
            summary = json.loads((run / "summary.json").read_text())
            assert summary["test_labels"] == "noisy"
            true[loss, seed] = true_clean_mse(results, run)
            estimate, se = summary["final_clean_mse_est_raw"], summary["final_clean_mse_est_se_raw"]
            print(f"{loss} {seed}: true {true[loss, seed]:.5f} est. {estimate:.5f} se {se:.5f}")
            # a test set large enough to make the comparison meaningful
            assert se < 0.25 * true[loss, seed], (loss, seed, se, true[loss, seed])
            # within 3 standard errors (one fixed table; calibration over many noisy test sets:
            # test_scoring_noisy_labels.py). Every run shares the test labels' noise, so the
            # four deviations are nearly the same (here about +2.3 se).
            assert abs(estimate - true[loss, seed]) < 3 * se, (loss, seed, estimate, se)
            # the noisy MSE is biased upwards by the mean test variance
            assert summary["final_noisy_mse_raw"] > true[loss, seed] + 0.05
    for seed in SEEDS:  # BIV beats L2 on the true clean MSE without seeing a clean label
        assert true["biv", seed] < true["l2", seed]


def test_bad_table_stops_the_workflow_before_any_job(copy_workflow, tmp_path):
    root = copy_workflow(tmp_path)
    table = make_table().head(200)
    table.loc[17, "y_var"] = -1.0
    table.to_csv(root / "table.csv", index=False)
    cfg = config()
    for dataset in cfg["datasets"].values():
        dataset["test_size"] = 0.5
    (root / "table.yaml").write_text(yaml.safe_dump(cfg))
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "table.yaml"]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "datasets.noisy.variance: column 'y_var', row 17 (line 19) of" in proc.stderr
    assert "-1.0 is negative" in proc.stderr
    assert not (root / "results").exists()
