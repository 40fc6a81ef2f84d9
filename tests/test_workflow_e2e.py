"""The whole workflow on a tiny config, run for real in a temporary folder: outputs, the report,
incremental reruns after config edits, start-up errors and recovery from a failed job.

The workflow runs to the end once per module (``finished``), in a folder that no test changes:
tests that only read its outputs use it; a test that reruns or edits works on its own copy of it
(``workdir``), so that each test passes alone and in any order."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml"]
TIMEOUT = 600
#: The points of tiny.yaml's 2-D sweep `grid` (batch size x epsilon), with l2 and biv each.
GRID = [f"grid__batchsize-{b}_epsilon-{e}" for b in (32, 64) for e in ("0p1", "1")]
GRID_PACKS = {f"{point}/{loss}/seeds1-5" for point in GRID for loss in ("l2", "biv")}


def tiny_workflow(copy_workflow, dest: Path) -> Path:
    """The workflow and the tiny config (with its reference file) in ``dest``."""
    root = copy_workflow(dest)
    for name in ("tiny.yaml", "tiny-reference.yaml"):
        shutil.copy2(ROOT / "tests" / "configs" / name, root / name)
    return root


@pytest.fixture(scope="module")
def finished(copy_workflow, tmp_path_factory) -> tuple[Path, str]:
    """(folder, Snakemake's output) of the tiny config run to the end. Read-only: no test may
    run Snakemake in it or change a file of it."""
    root = tiny_workflow(copy_workflow, tmp_path_factory.mktemp("finished"))
    return root, snakemake(root)


@pytest.fixture
def workdir(finished, tmp_path) -> Path:
    """A copy of the finished folder, Snakemake's records (.snakemake) and file times included:
    the copy is up to date, as the original is."""
    return Path(shutil.copytree(finished[0], tmp_path / "workflow", symlinks=True))


def snakemake(workdir: Path, *args: str, ok: bool = True) -> str:
    proc = subprocess.run(
        [*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT
    )
    output = proc.stdout + proc.stderr
    if ok and proc.returncode != 0:
        pytest.fail(f"snakemake failed (exit {proc.returncode}):\n{output[-6000:]}")
    if not ok and proc.returncode == 0:
        pytest.fail(f"snakemake should have failed:\n{output[-3000:]}")
    return output


def jobs_run(output: str) -> dict[str, int]:
    """Job counts from the first 'Job stats' table Snakemake prints ({} when nothing ran)."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) not in ("total", "all"):
            counts[match.group(1)] = int(match.group(2))
    return counts


def planned_packs(workdir: Path) -> set[str]:
    """The packs ('experiment/loss/pack') whose train jobs a dry run lists."""
    out = snakemake(workdir, "-n")
    found = re.findall(r"wildcards: experiment=(\S+), loss=(\S+), pack=(\S+)$", out, re.MULTILINE)
    return {"/".join(match) for match in found}  # only train jobs have a pack wildcard


def edit_config(workdir: Path, edit) -> None:
    path = workdir / "tiny.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_full_run_writes_tables_figures_and_report(finished):
    workdir, out = finished
    assert jobs_run(out)["train"] == 12 and "run_folder" not in jobs_run(out)  # packs of 2 seeds
    results = workdir / "results"
    for fig in ("curves", "seeds/curves", "sweeps/eps", "sweeps/grid"):
        for ext in ("png", "pdf"):
            assert (results / "figures" / f"{fig}.{ext}").stat().st_size > 1000
        assert len(figure_table(results, fig)) > 0
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert len(runs) == 24
    assert set(runs["experiment"]) == {"noisy", "clean", "eps__epsilon-0p1", *GRID}
    sweep_rows = runs[runs["sweep"] == "eps"]
    assert list(sweep_rows["vary:losses.biv.epsilon"]) == [0.1, 0.1]
    assert set(runs.loc[runs["experiment"] == "noisy", "noise"]) == {"mixture"}

    # the summary agrees with the per-run files: the paper's "best" is the minimum of the
    # seed-averaged curve, the old quantity the mean of per-seed minima
    summary = pd.read_csv(results / "tables" / "summary.csv")
    for row in summary.itertuples():
        files = sorted(
            (results / "runs" / row.experiment / row.loss).glob("seeds1-5/seed*/summary.json")
        )
        best = [json.loads(f.read_text())["best_test_mse"] for f in files]
        final = [json.loads(f.read_text())["final_test_mse"] for f in files]
        curves = [pd.read_csv(f.parent / "metrics.csv") for f in files]
        curves = [c[(c["split"] == "test") & (c["metric"] == "mse")] for c in curves]
        mean_curve = sum(c["value"].to_numpy() for c in curves) / len(curves)
        assert row.n_seeds == len(files) == 2
        assert row.mean_of_seed_mins == pytest.approx(sum(best) / 2, rel=1e-12)
        assert row.min_of_mean_curve == pytest.approx(mean_curve.min(), rel=1e-12)
        assert row.final_of_mean_curve == pytest.approx(sum(final) / 2, rel=1e-12)
        assert row.mean_of_seed_mins <= row.min_of_mean_curve
        assert row.min_of_mean_curve_ci_low <= row.min_of_mean_curve_ci_high
    biv = summary[(summary["experiment"] == "noisy") & (summary["loss"] == "biv")].iloc[0]
    l2 = runs[(runs["experiment"] == "noisy") & (runs["loss"] == "l2")].set_index("seed")
    bv = runs[(runs["experiment"] == "noisy") & (runs["loss"] == "biv")].set_index("seed")
    diff = (bv["best_test_mse"] - l2["best_test_mse"]).mean()
    assert biv["baseline"] == "l2"
    assert biv["paired_diff_of_seed_mins_mean"] == pytest.approx(diff, rel=1e-12)

    bench = pd.read_csv(results / "tables" / "benchmarks.csv")
    train = bench[bench["rule"] == "train"]
    assert sorted(train["job"]) == sorted(
        {"clean/l2/seeds1-5", "eps__epsilon-0p1/biv/seeds1-5", "noisy/biv/seeds1-5"}
        | {"noisy/l2/seeds1-5", *GRID_PACKS}
    )
    assert (train["runs"] == 2).all() and bench.loc[bench["rule"] != "train", "runs"].isna().all()
    assert (bench["s"] > 0).all()
    # the run folders are the pack's output, each with its parameters; the checkpoints are gone
    for pack in ("noisy/l2", "noisy/biv", "clean/l2", "eps__epsilon-0p1/biv"):
        folder = results / "runs" / pack / "seeds1-5"
        shown = sorted(p.name for p in folder.iterdir() if p.name != ".snakemake_timestamp")
        assert shown == ["seed1", "seed2"]  # (Snakemake's timestamp of a directory output)
        assert sorted(p.name for p in (folder / "seed2").iterdir()) == [
            "metrics.csv",
            "params.json",
            "predictions.csv",
            "run.json",
            "summary.json",
        ]
        assert not (results / "checkpoints" / pack / "seeds1-5").exists()
    params = json.loads((results / "runs/noisy/biv/seeds1-5/seed2/params.json").read_text())
    assert (params["experiment"], params["loss_name"], params["seed"]) == ("noisy", "biv", 2)
    assert not (results / "packs").exists()
    prov = json.loads((results / "provenance.json").read_text())
    assert prov["config"]["losses"]["biv"]["epsilon"] == 0.5
    assert "torch" in prov["packages"] and prov["git_commit"]

    text = (results / "reproduction.md").read_text()
    paired = 1 - bv["best_test_mse"] / l2["best_test_mse"]
    assert f"{paired.mean():.1%}" in text and "Synthetic" in text
    assert "0.800" in text and "![learning curves](figures/curves.png)" in text


def figure_table(results: Path, name: str) -> pd.DataFrame:
    """A figure's CSV, its labels as text (a swept value 1 reads "1", not 1.0)."""
    labels = dict.fromkeys(["label", "x_label", "series", "baseline"], str)
    return pd.read_csv(
        results / "figures" / f"{name}.csv", dtype=labels, keep_default_na=False, na_values=[""]
    )


def test_figure_tables_are_the_tables_they_are_drawn_from(finished):
    """Each figure's CSV holds the numbers of summary.csv and runs.csv it shows."""
    results = finished[0] / "results"
    summary = pd.read_csv(results / "tables" / "summary.csv").set_index(["experiment", "loss"])
    runs = pd.read_csv(results / "tables" / "runs.csv").set_index(["experiment", "loss", "seed"])
    curves = figure_table(results, "curves")
    assert set(curves.groupby(["experiment", "loss"]).groups) == {
        ("noisy", "l2"),
        ("noisy", "biv"),
        ("clean", "l2"),
    }
    for key, curve in curves.groupby(["experiment", "loss"]):
        row = summary.loc[key]
        assert curve["mean"].min() == pytest.approx(row["min_of_mean_curve"], rel=1e-12)
        assert curve["mean"].iloc[-1] == pytest.approx(row["final_of_mean_curve"], rel=1e-12)
        assert set(curve["n_seeds"]) == {row["n_seeds"]} and set(curve["band"]) == {"std"}
        assert (curve["low"] <= curve["mean"]).all() and (curve["mean"] <= curve["high"]).all()
    seeds = figure_table(results, "seeds/curves")
    assert len(seeds) == 3 * 2 * 2  # 3 curves x 2 seeds x (best, final)
    for row in seeds.itertuples():
        run = runs.loc[(row.experiment, row.loss, row.seed)]
        assert row.value == run[f"{row.quantity}_test_mse"]  # the same digits
    for name, points in (("eps", ["eps__epsilon-0p1"]), ("grid", GRID)):
        sweep = figure_table(results, f"sweeps/{name}")
        assert len(sweep) == len(points) * (1 if name == "eps" else 2)
        shown = summary.loc[
            [(p, loss) for p in points for loss in ("l2", "biv") if (p, loss) in summary.index]
        ]
        assert sorted(sweep["best"]) == sorted(shown["min_of_mean_curve"])
        assert sorted(sweep["improvement"].dropna()) == sorted(
            shown["rel_improvement_of_min_of_mean_curve"].dropna()
        )


def test_each_member_trained_on_its_seeds_draw_in_the_noise_file(finished):
    """The noise stage: one draw file per (dataset, noise, seed block) with every seed's draw and
    its summary; each run's run.json records the digest of the labels and variances it trained
    on, which is its seed's draw in that file, for every loss of the seed (paired), sweeps
    included; the noise figure's CSV is the file's σ² quantiles."""
    from biv.noise.files import draw_digest, read_draw_file, seed_draw
    from biv.report.figure_tables import noise_variance_table

    results = finished[0] / "results"
    arrays = read_draw_file(results / "noise/syn/mixture/seeds1-5.npz")
    assert list(arrays["seeds"]) == [1, 2]
    digests = {s: draw_digest(*(seed_draw(arrays, s)[i] for i in (0, 2))) for s in (1, 2)}
    noisy_runs = sorted(results.glob("runs/*/*/seeds1-5/seed*/run.json"))
    trained = [json.loads(f.read_text()) for f in noisy_runs]
    trained = [(r["seed"], r["run"]["noise_meta"]) for r in trained if r["noise"] is not None]
    assert len(trained) == 2 * (2 + 1 + 2 * len(GRID))  # noisy, eps and grid: 2 seeds each
    for seed, meta in trained:
        assert meta["draw_sha256"] == digests[seed]
    assert digests[1] != digests[2]
    summary = pd.read_csv(results / "noise/syn/mixture/seeds1-5.csv")
    means = summary[summary["statistic"] == "mean_var"].set_index("seed")["value"]
    assert means[1] == arrays["var"][0].mean() and means[2] == arrays["var"][1].mean()
    figure = pd.read_csv(results / "figures/noise/syn/mixture.csv")
    expected = noise_variance_table(dict(zip([1, 2], arrays["var"], strict=True)))
    pd.testing.assert_frame_equal(figure, expected)
    assert (results / "figures/noise/syn/mixture.png").stat().st_size > 1000


def test_the_2d_sweep_is_drawn_as_heatmaps_of_its_table(finished):
    """tiny.yaml's sweep `grid` (batch size x epsilon): its heatmaps show its CSV's numbers,
    batch size across, epsilon down."""
    import matplotlib

    matplotlib.use("Agg")
    from biv.report import plots
    from biv.workflow.plan import load_plan

    workdir = finished[0]
    with contextlib.chdir(workdir):  # the reproduction's reference file is found there
        plan = load_plan(yaml.safe_load((workdir / "tiny.yaml").read_text()))
    table = figure_table(workdir / "results", "sweeps/grid")
    fig = plots.draw_sweep(plan.sweeps["grid"].to_dict(), table)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "l2: best clean test MSE (normalized units)",
        "biv: best clean test MSE (normalized units)",
        "biv: improvement over l2",
    ]
    improvement = panels[2]
    assert [t.get_text() for t in improvement.get_xticklabels()] == ["32", "64"]
    assert [t.get_text() for t in improvement.get_yticklabels()] == ["0.1", "1"]
    biv = table[table["loss"] == "biv"]
    cells = biv.pivot(index="series_index", columns="x", values="improvement").to_numpy()
    np.testing.assert_allclose(improvement.collections[0].get_array().reshape(2, 2), cells)
    assert len(improvement.texts) == 4 and all("[" in t.get_text() for t in improvement.texts)
    assert fig.legends == []


def test_report_of_the_full_run(workdir):
    results = workdir / "results"
    snakemake(workdir, "--report", "results/report.html")
    html = (results / "report.html").read_text(errors="replace")
    assert "curves.png" in html and "summary.csv" in html
    shown_too = ("noise/syn/mixture.png", "noise/syn/mixture.csv")  # the noise figure and its table
    for shown in (
        "seeds/curves.png",
        "sweeps/grid.png",
        "curves.csv",
        "sweeps/grid.csv",
        *shown_too,
    ):
        assert shown in html, shown


def test_second_run_does_nothing(workdir):
    assert jobs_run(snakemake(workdir)) == {}


def test_moving_the_download_cache_reruns_no_data_preparation_or_training(workdir):
    jobs = jobs_run(snakemake(workdir, "--config", "download_dir=elsewhere/downloads"))
    assert set(jobs) <= {"provenance", "collect_benchmarks"}  # the recorded config changed


def test_rewriting_the_config_with_the_same_content_retrains_nothing(workdir):
    # defaults spelled out and keys reordered: the run parameters stay the same
    edit_config(
        workdir,
        lambda c: c["experiments"]["noisy"].update(
            training={**c["experiments"]["noisy"]["training"], "lr": 0.001, "shuffle": True}
        ),
    )
    edit_config(workdir, lambda c: c["losses"].update(l2=c["losses"].pop("l2")))
    # only the record of the config as written reruns
    assert set(jobs_run(snakemake(workdir))) <= {"provenance", "collect_benchmarks"}


def test_changing_one_epsilon_reruns_only_that_loss(workdir):
    edit_config(workdir, lambda c: c["losses"]["biv"].update(epsilon=0.3))
    assert planned_packs(workdir) == {"noisy/biv/seeds1-5"}  # the sweep's biv has its own epsilon
    jobs = jobs_run(snakemake(workdir))
    assert jobs.pop("train") == 1
    assert set(jobs) <= {
        "aggregate",
        "collect_benchmarks",
        "provenance",
        "plot_learning_curves",
        "plot_sweep",
        "reproduction",
    }
    params = json.loads((workdir / "results/runs/noisy/biv/seeds1-5/seed1/params.json").read_text())
    assert params["loss"]["epsilon"] == 0.3


def test_adding_a_seed_reruns_only_its_pack(workdir):
    edit_config(workdir, lambda c: c["experiments"]["noisy"].update(seeds=[1, 2, 3]))
    # seed 3 joins the packs of seeds 1-5 of l2 and biv, and of the sweep's biv (sweeps inherit
    # the seeds)
    packs = {"noisy/l2/seeds1-5", "noisy/biv/seeds1-5", "eps__epsilon-0p1/biv/seeds1-5"}
    assert planned_packs(workdir) == packs | GRID_PACKS
    jobs = jobs_run(snakemake(workdir))
    assert jobs.pop("train") == 3 + len(GRID_PACKS)
    assert jobs.pop("draw_noise") == 1  # the block seeds1-5 of syn/mixture, now with seed 3
    assert "prepare_dataset" not in jobs and "estimate_noise" not in jobs
    assert (workdir / "results/runs/noisy/l2/seeds1-5/seed3/summary.json").exists()
    # a seed of the next block is a pack of its own: the others stay
    edit_config(workdir, lambda c: c["experiments"]["clean"].update(seeds=[1, 2, 6]))
    assert planned_packs(workdir) == {"clean/l2/seeds6-10"}
    jobs = jobs_run(snakemake(workdir))
    assert jobs.pop("train") == 1 and "draw_noise" not in jobs  # clean labels: no draw


def test_changing_a_train_size_reruns_that_dataset_chain_only(workdir):
    edit_config(workdir, lambda c: c["datasets"]["syn-clean"].update(n_train=150))
    jobs = jobs_run(snakemake(workdir))
    assert jobs.pop("prepare_dataset") == 1 and jobs.pop("train") == 1  # clean's pack, seeds 1-5
    assert "estimate_noise" not in jobs


def test_editing_a_noise_setting_reruns_its_estimate_and_trainings(workdir):
    edit_config(workdir, lambda c: c["noise"]["mixture"]["components"][1].update(mean=8.0))
    jobs = jobs_run(snakemake(workdir))
    assert jobs.pop("estimate_noise") == 1  # results/noise/syn/mixture/params.json
    assert jobs.pop("draw_noise") == 1 and jobs.pop("plot_noise") == 1  # its draws, its figure
    # the packs of noisy (2 losses) and of the sweeps (1 loss; 2 x 2 points of 2 losses)
    assert jobs.pop("train") == 3 + len(GRID_PACKS)
    assert "prepare_dataset" not in jobs
    estimate = json.loads((workdir / "results/noise/syn/mixture/params.json").read_text())
    assert estimate["label_units"]["components"][1]["mean"] == 8.0
    y_std = json.loads((workdir / "results/data/syn.json").read_text())["y_std"]
    assert estimate["model_units"]["components"][1]["mean"] == pytest.approx(8.0 / y_std**2)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["experiments"]["noisy"]["losses"].append("huber"), "unknown loss 'huber'"),
        (  # a schema error reads as `biv check` prints it, not as Snakemake's schema dump
            lambda c: c["losses"]["biv"].update(epsilon=-1),
            "\nlosses.biv.epsilon: -1 is less than the minimum of 0 (biv check CONFIG",
        ),
    ],
)
def test_bad_config_fails_before_any_job(copy_workflow, tmp_path, edit, message):
    workdir = tiny_workflow(copy_workflow, tmp_path)  # nothing run: no job may start
    edit_config(workdir, edit)
    out = snakemake(workdir, ok=False)
    assert message in out
    assert "Job stats" not in out and "Failed validating" not in out


def test_failed_training_leaves_no_output_and_rerun_continues(workdir):
    original = (workdir / "tiny.yaml").read_text()
    edit_config(workdir, lambda c: c["experiments"]["clean"]["training"].update(lr=1e30))
    out = snakemake(workdir, "--keep-going", ok=False)
    assert "train" in out
    assert not (workdir / "results/runs/clean/l2/seeds1-5").exists()
    assert not (workdir / "results/runs/clean/l2/seeds1-5.partial").exists()
    log = (workdir / "results/logs/train/clean/l2/seeds1-5.log").read_text()
    assert re.search(r"step \d+", log) and re.search(r"nan|inf", log, re.IGNORECASE)
    # the job log holds the traceback, not only Snakemake's console
    assert "Traceback (most recent call last)" in log and "NonFiniteLossError" in log
    (workdir / "tiny.yaml").write_text(original)
    jobs = jobs_run(snakemake(workdir))
    assert jobs["train"] == 1  # clean's pack of seeds 1-5
    assert (workdir / "results/runs/clean/l2/seeds1-5/seed1/summary.json").exists()
    assert jobs_run(snakemake(workdir)) == {}
