"""The reproduction report compares the paper's values with the paper-defined numbers (the
seed-averaged curve), and says which quantity is which."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from biv.config import ConfigError
from biv.config.reproduction import read_reference
from biv.report import reproduction
from biv.report.tables import summary_table

ROOT = Path(__file__).resolve().parents[1]
CURVES = {  # (experiment, loss) -> {seed: clean test MSE at steps 10, 20, 30}
    ("noisy", "l2"): {1: [4.0, 2.0, 4.0], 2: [4.0, 4.0, 2.0]},  # mean curve min 3, seed mins 2
    ("noisy", "biv"): {1: [3.0, 1.0, 2.0], 2: [1.0, 2.4, 1.8]},  # 1.7 at step 20; seed mins 1
    # by the mean of seed minima cutoff-a (1.0) would look best; by the paper's definition
    # cutoff-b (1.5 < 2.0) is the best cutoff
    ("noisy", "cutoff-a"): {1: [1.0, 3.0, 3.0], 2: [3.0, 1.0, 3.0]},
    ("noisy", "cutoff-b"): {1: [2.0, 1.5, 1.6], 2: [2.0, 1.5, 1.6]},
    ("noisy", "iv"): {1: [2.0, 1.2, 1.4], 2: [2.0, 1.4, 1.2]},  # 1.3 at step 20
    ("clean", "l2"): {1: [1.0, 0.5, 0.3], 2: [1.0, 0.5, 0.5]},  # final of mean curve 0.4
}
BLOCK = {
    "note": "hand-made curves",
    "panels": {
        "syn": {
            "experiment": "noisy",
            "l2": "l2",
            "biv": "biv",
            "iv": "iv",
            "cutoffs": ["cutoff-a", "cutoff-b"],
            "no_noise": {"experiment": "clean", "loss": "l2"},
        }
    },
}
REFERENCE = {
    "source": "made up",
    "read_off_fraction": 0.025,
    "panels": {
        "syn": {
            "title": "Synthetic",
            "axis": [0.0, 0.4],  # 0.025 x 0.4: read off +-0.01
            "best": {"l2": 3.005, "biv": 1.0, "cutoff": [1.45, 1.495], "iv": "not read"},
            "final": {"no_noise_l2": 0.4, "biv": 2.5, "iv": "not read"},
        }
    },
}


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    rows = [
        {"experiment": exp, "loss": loss, "seed": seed, "step": 10 * (i + 1), "value": v}
        for (exp, loss), seeds in CURVES.items()
        for seed, values in seeds.items()
        for i, v in enumerate(values)
    ]
    experiments = {name: {"baseline": "l2", "sweep": None} for name in ("noisy", "clean")}
    return summary_table(pd.DataFrame(rows), experiments)


def test_rows_compare_the_paper_with_the_minimum_of_the_mean_curve(summary):
    rows = reproduction.panel_rows(
        BLOCK["panels"]["syn"], REFERENCE["panels"]["syn"], summary, 0.01
    )
    table = {row["quantity"]: row for row in rows}
    improvement = "BIV's improvement over L2: 1 − min mean BIV / min mean L2 curve"
    assert list(table) == [
        "best L2 (l2): min of mean curve",
        "best BIV (biv): min of mean curve",
        "best cutoff (cutoff-b): min of mean curve",
        "best IV (iv): min of mean curve",
        "no-noise L2 (clean/l2): final of mean curve",
        "BIV (biv): final of mean curve",
        "IV (iv): final of mean curve",
        improvement,
    ]
    paper, ours = reproduction.PAPER, reproduction.OURS
    tests = (reproduction.OURS_IN_PAPER, reproduction.PAPER_IN_OURS)
    seed_mins = reproduction.SEED_MINS

    def verdicts(row):
        return tuple(row[t] for t in tests)

    biv = table["best BIV (biv): min of mean curve"]
    # seeds 1.0 and 2.4 at step 20: 1.7 +- t(1) * 0.7
    assert biv[ours] == "1.700 [-7.194, 10.594]" and biv["at step"] == "20"
    # the paper's 1.0 equals our mean of seed minima, which is not the paper's quantity: our
    # 1.7 is outside its read-off range, the paper's value inside our wide interval
    assert biv[paper] == "1.000 [0.990, 1.010]" and verdicts(biv) == ("no", "yes")
    assert biv[seed_mins] == "1.000 [1.000, 1.000]"
    l2 = table["best L2 (l2): min of mean curve"]
    assert (l2[paper], l2[ours].split()[0]) == ("3.005 [2.995, 3.015]", "3.000")
    assert verdicts(l2) == ("yes", "yes")
    cutoff = table["best cutoff (cutoff-b): min of mean curve"]
    assert (cutoff[paper], cutoff[ours]) == ("1.450–1.495 [1.440, 1.505]", "1.500 [1.500, 1.500]")
    assert verdicts(cutoff) == ("yes", "no")  # the read-off range [1.45, 1.495] misses 1.5
    iv = table["best IV (iv): min of mean curve"]
    assert (iv[paper], iv[ours].split()[0], verdicts(iv)) == ("not read", "1.300", ("–", "–"))
    clean = table["no-noise L2 (clean/l2): final of mean curve"]
    assert clean[ours].startswith("0.400 [") and clean["at step"] == "30"
    assert verdicts(clean) == ("yes", "yes") and clean[seed_mins] == "–"
    final = table["BIV (biv): final of mean curve"]
    assert final[ours].startswith("1.900 [") and verdicts(final) == ("no", "yes")
    assert table["IV (iv): final of mean curve"][paper] == "not read"
    # 1 - 1.7/3 = 43.3 % (linearized t interval); per seed 1 - 1/2 = 50 %; the paper's
    # 1 - 1/3.005 = 66.7 %, from 1 - 1.01/2.995 = 66.3 % to 1 - 0.99/3.015 = 67.2 %
    row = table[improvement]
    assert row[ours] == "43.3% [-13.1%, 99.8%]" and row["seeds"] == "2"
    assert row[paper] == "66.7% [66.3%, 67.2%]" and verdicts(row) == ("no", "yes")
    assert row[seed_mins] == "50.0% [50.0%, 50.0%]"


def test_reference_ranges_and_tests():
    assert reproduction.read_off_range(0.1, 0.01) == pytest.approx((0.09, 0.11))
    assert reproduction.read_off_range([0.5, 0.52], 0.01) == pytest.approx((0.49, 0.53))
    # Bike: the paper's 0.096 and 0.122 give 21.3 %, anywhere from 1 - 0.106/0.112 = 5.4 % to
    # 1 - 0.086/0.132 = 34.8 % with +-0.01
    low, high = reproduction.improvement_range(0.122, 0.096, 0.01)
    assert (low, high) == pytest.approx((1 - 0.106 / 0.112, 1 - 0.086 / 0.132))
    assert reproduction.inside((0.2, 0.2), (0.1, 0.2)) == "yes"  # touching
    assert reproduction.inside((0.09, 0.09), (0.1, 0.2)) == "no"
    assert reproduction.inside((0.05, 0.1), (0.1, 0.2)) == "yes"  # a range that overlaps
    assert reproduction.inside((0.1, 0.1), (float("nan"), 0.2)) == "–"


def test_tolerance_is_a_fraction_of_each_panels_axis():
    assert reproduction.panel_tolerance(REFERENCE, "syn") == pytest.approx(0.01)


def test_the_shipped_reference_file_is_well_formed_and_the_test_reference_too(tmp_path):
    path = tmp_path / "reference.yaml"
    path.write_text(yaml.safe_dump(REFERENCE))
    assert read_reference(str(path)) == REFERENCE
    assert set(read_reference(str(ROOT / "config" / "paper-reference.yaml"))["panels"]) == {
        "utkf",
        "bike",
    }


@pytest.mark.parametrize(
    "change, key, problem",
    [
        ({"read_off_fraction": 2}, "read_off_fraction", "2: a number in (0, 1)"),
        ({"read_off_fraction": None}, "read_off_fraction", "None: a number in (0, 1)"),
        ({"extra": 1}, "", "['extra']: unknown keys"),
        ({"panels": {"syn": {"axis": [0.4, 0.0]}}}, "panels.syn.axis", "[0.4, 0.0]: [low, high]"),
        ({"panels": {"syn": {"axis": [0, 1], "bset": {}}}}, "panels.syn", "['bset']: unknown"),
        (
            {"panels": {"syn": {"axis": [0, 1], "best": {"l2": [0.2, 0.1]}}}},
            "panels.syn.best.l2",
            "[0.2, 0.1]: a number, a range [low, high] or a text",
        ),
        (
            {"panels": {"syn": {"axis": [0, 1], "final": {"cutoff": 0.1}}}},
            "panels.syn.final",
            "['cutoff']: unknown; allowed: no_noise_l2, biv, iv",
        ),
    ],
)
def test_a_bad_reference_file_names_the_file_and_its_key(tmp_path, change, key, problem):
    path = tmp_path / "reference.yaml"
    path.write_text(yaml.safe_dump({**REFERENCE, **change}))
    where = f"reproduction.reference: {path}" + (f": {key}" if key else "")
    with pytest.raises(ConfigError) as err:
        read_reference(str(path))
    assert str(err.value).startswith(f"{where}: {problem}")


def test_report_markdown_and_html(summary, tmp_path):
    out = tmp_path / "results" / "reproduction.md"
    figure = tmp_path / "results" / "figures" / "paper.png"
    text = reproduction.report(BLOCK, REFERENCE, summary, figure, out)
    assert text.startswith("# Reproduction of Mai, Khamies & Paull (2021)")
    assert "`min_of_mean_curve`" in text and "`mean_of_seed_mins`" in text
    assert "Setting: hand-made curves" in text and "## Synthetic" in text
    row = (
        "| best BIV (biv): min of mean curve | 1.000 [0.990, 1.010] | 1.700 [-7.194, 10.594] | 20 "
        "| no | yes |"
    )
    assert row in " ".join(text.split())
    assert text.rstrip().endswith("![learning curves](figures/paper.png)")
    page = reproduction.report_html(BLOCK, REFERENCE, summary)
    assert page.startswith("<!DOCTYPE html>") and page.count("<table") == 1
    assert "<td>43.3% [-13.1%, 99.8%]</td>" in page
    assert "Read-off uncertainty ±0.01: 0.025 of the panel's y axis, 0 to 0.4." in text
    assert "<code>min_of_mean_curve</code>" in page and "<h2>Synthetic</h2>" in page


def test_errors_name_missing_runs_and_a_wrong_baseline(summary):
    panel = {**BLOCK["panels"]["syn"], "cutoffs": ["cutoff-c"]}
    with pytest.raises(ValueError, match="no runs of experiment 'noisy', loss 'cutoff-c'"):
        reproduction.panel_rows(panel, {}, summary, 0.01)
    panel = {**BLOCK["panels"]["syn"], "l2": "cutoff-a"}
    with pytest.raises(ValueError, match="compares noisy/biv with noisy/l2, not with cutoff-a"):
        reproduction.panel_rows(panel, {}, summary, 0.01)
