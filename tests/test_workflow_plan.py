"""The plan built from a config: cross-references, sweeps, run parameters, bad input."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from biv.workflow import rule_params

ROOT = Path(__file__).resolve().parents[1]


def load(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


@pytest.fixture
def demo() -> dict:
    return load(ROOT / "config" / "config.yaml")


def with_sweep(config: dict, sweep: dict) -> dict:
    config = copy.deepcopy(config)
    config["sweeps"] = {"s": sweep}
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


def test_demo_plan_runs_every_loss_and_seed(demo):
    plan = rule_params.build_plan(demo)
    assert len(plan.runs) == 4 * 3 + 1 * 3
    assert plan.noise_settings() == [("synthetic", "mixture")]
    assert plan.experiments["demo"].baseline == "l2"
    assert plan.experiments["demo-clean"].noise is None


def test_run_params_of_one_run(demo):
    plan = rule_params.build_plan(demo)
    files = {"dataset_file": "results/data/synthetic.npz"}
    noise_file = "results/noise/synthetic/mixture/params.json"
    params = rule_params.run_spec(plan, "demo", "biv", 2, **files, noise_file=noise_file).to_dict()
    assert params["experiment"] == "demo" and params["loss_name"] == "biv" and params["seed"] == 2
    assert params["dataset"] == {"name": "synthetic", "file": "results/data/synthetic.npz"}
    assert params["noise"] == {
        "name": "mixture",
        "file": "results/noise/synthetic/mixture/params.json",
    }
    assert params["loss"] == {"type": "biv", "epsilon": 0.5}
    assert params["training"]["batch_size"] == 256
    clean = rule_params.run_spec(plan, "demo-clean", "l2", 1, **files, noise_file=None).to_dict()
    assert clean["noise"] is None


def test_sweep_over_loss_parameter_shares_noise_settings(demo):
    config = with_sweep(
        demo, {"experiment": "demo", "vary": {"losses.biv.epsilon": [0.01, 1]}, "losses": ["biv"]}
    )
    plan = rule_params.build_plan(config)
    names = [n for n in plan.experiments if n.startswith("s__")]
    assert names == ["s__epsilon-0p01", "s__epsilon-1"]
    assert plan.experiments["s__epsilon-0p01"].losses["biv"].to_dict() == {
        "type": "biv",
        "epsilon": 0.01,
    }
    assert plan.experiments["s__epsilon-1"].noise == "mixture"
    # the base experiment is untouched and no new noise setting appears
    assert plan.experiments["demo"].losses["biv"].epsilon == 0.5
    assert plan.noise_settings() == rule_params.build_plan(demo).noise_settings()


def test_grid_sweep_derives_noise_settings(demo):
    config = with_sweep(
        demo,
        {
            "experiment": "demo",
            "vary": {"training.batch_size": [16, 32], "noise.components.1.mean": [5.0, 20.0]},
            "losses": ["l2", "biv"],
        },
    )
    plan = rule_params.build_plan(config)
    points = plan.sweeps["s"].points
    assert len(points) == 4
    exp = plan.experiments["s__batchsize-16_mean-20"]
    assert exp.training.batch_size == 16
    assert exp.noise == "mixture__mean-20"
    assert plan.noise["mixture__mean-20"].setting["components"][1]["mean"] == 20.0
    assert plan.noise["mixture"].setting["components"][1]["mean"] == 6.0
    assert len(plan.runs) == 15 + 4 * 2 * 3


def test_sweep_over_dataset_derives_dataset(demo):
    config = with_sweep(demo, {"experiment": "demo", "vary": {"dataset.n_train": [500]}})
    plan = rule_params.build_plan(config)
    exp = plan.experiments["s__ntrain-500"]
    assert exp.dataset == "synthetic__ntrain-500"
    assert plan.datasets["synthetic__ntrain-500"].config.n_train == 500
    assert plan.datasets["synthetic"].config.n_train == 2000


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["experiments"]["demo"].update(dataset="bike"),
            "experiments.demo.dataset: unknown dataset 'bike' (defined in datasets: synthetic)",
        ),
        (lambda c: c["experiments"]["demo"].update(noise="gamma"), "unknown noise setting 'gamma'"),
        (
            lambda c: c["experiments"]["demo"]["losses"].append("huber"),
            "experiments.demo.losses[4]: unknown loss 'huber'",
        ),
        (lambda c: c["experiments"]["demo"].update(model="cnn2"), "unknown model 'cnn2'"),
        (lambda c: c["experiments"]["demo"].update(seeds=[1, 1]), "repeats seed 1"),
        (lambda c: c["experiments"]["demo"].update(baseline="biv2"), "experiments.demo.baseline"),
        (
            lambda c: c["figures"]["learning_curves"]["panels"][0].update(experiment="nope"),
            "figures.learning_curves.panels[0].experiment",
        ),
        (
            lambda c: c.update(sweeps={"s": {"experiment": "demo", "vary": {"lr": [1]}}}),
            "'lr' is not a sweepable path",
        ),
        (
            lambda c: c.update(
                sweeps={"s": {"experiment": "demo", "vary": {"training.nope.x": [1]}}}
            ),
            "'training.nope' does not exist",
        ),
        (
            lambda c: c.update(
                sweeps={"s": {"experiment": "demo", "vary": {"noise.components.5.mean": [1]}}}
            ),
            "'5' is not an index of a list of 2",
        ),
    ],
)
def test_bad_references_name_the_key(demo, edit, message):
    edit(demo)
    with pytest.raises(rule_params.ConfigError, match=_escape(message)):
        rule_params.build_plan(demo)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_schema_rejects_unsafe_names_and_unknown_keys(demo):
    from snakemake.exceptions import WorkflowError

    bad = copy.deepcopy(demo)
    bad["losses"]["b iv"] = {"type": "biv", "epsilon": 0.5}
    with pytest.raises(WorkflowError, match="b iv"):
        validate(bad, str(ROOT / "config" / "schema.yaml"))
    bad = copy.deepcopy(demo)
    bad["losses"]["biv"]["epsilom"] = 0.5
    with pytest.raises(WorkflowError, match="epsilom"):
        validate(bad, str(ROOT / "config" / "schema.yaml"))


def test_impossible_noise_setting_fails_with_its_key(demo):
    demo["noise"]["mixture"]["components"][0] = {"mean": 1.0, "var": 5.0}
    with pytest.raises(
        rule_params.ConfigError, match=r"noise\.mixture\.components\[0\]\.var: 5\.0"
    ):
        rule_params.build_plan(demo)


def test_impossible_swept_noise_names_the_sweep_point(demo):
    config = with_sweep(demo, {"experiment": "demo", "vary": {"noise.p": [0.5, 1.5]}})
    with pytest.raises(
        rule_params.ConfigError, match=r"^sweeps\.s\.vary\.noise\.p\[1\]: 1\.5 is not allowed"
    ):
        rule_params.build_plan(config)


def test_only_mlp_trainings_are_grouped_for_clusters():
    config = load(ROOT / "config" / "paper.yaml")
    plan = rule_params.build_plan(config, check_files=False)
    assert rule_params.train_group(plan, "bike") == "train-mlp"
    assert rule_params.train_group(plan, "bike-epsilon__epsilon-0p01") == "train-mlp"
    assert rule_params.train_group(plan, "utkf") is None


@pytest.mark.parametrize(("device", "gpus"), [("auto", 1), ("cuda", 1), ("cpu", 0)])
def test_the_training_device_decides_the_gpu_request(device, gpus):
    config = load(ROOT / "config" / "paper.yaml")
    for name in ("bike", "utkf"):
        config["experiments"][name].setdefault("training", {})["device"] = device
    plan = rule_params.build_plan(config, check_files=False)
    assert rule_params.train_gpus(plan, "bike") == rule_params.train_gpus(plan, "utkf") == gpus
    assert rule_params.train_group(plan, "bike") == (
        "train-cpu" if device == "cpu" else "train-mlp"
    )
    assert rule_params.train_group(plan, "utkf") is None


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_the_training_device_sends_packs_to_train_or_train_cpu(device):
    """The wildcard constraints of rules train and train_cpu split the experiments."""
    config = load(ROOT / "config" / "paper.yaml")
    config["experiments"]["bike"].setdefault("training", {})["device"] = device
    plan = rule_params.build_plan(config, check_files=False)
    gpu, cpu = (re.compile(rule_params.experiments_pattern(plan, g)) for g in (True, False))
    on_cpu = {name: exp.training.device == "cpu" for name, exp in plan.experiments.items()}
    assert on_cpu["bike"] is (device == "cpu") and not on_cpu["utkf"]
    for name in plan.experiments:
        assert bool(gpu.fullmatch(name)) is not on_cpu[name]
        assert bool(cpu.fullmatch(name)) is on_cpu[name]
    assert not gpu.fullmatch("utkf-x") and not cpu.fullmatch("bike-x")
    if device == "auto":
        assert rule_params.experiments_pattern(plan, False) == "(?!)"  # matches nothing


def test_downloads_and_preparation_requests_follow_the_data():
    """One download per publisher zip (two datasets of one zip share it); the preparation asks
    for what its data need: UTKFace by its images, a table by its file."""
    config = load(ROOT / "config" / "paper.yaml")
    config["datasets"]["bike-small"] = {**config["datasets"]["bike"], "train_size": 100}
    plan = rule_params.build_plan(config, check_files=False)
    url = config["datasets"]["bike"]["url"]
    assert rule_params.downloads(plan) == {
        "bike+sharing+dataset.zip": {
            name: plan.datasets[name].config.to_dict() for name in ("bike", "bike-small")
        }
    }
    assert plan.datasets["bike"].config.url == url
    assert rule_params.dataset_downloads(plan, "bike-small") == ["bike+sharing+dataset.zip"]
    assert rule_params.dataset_downloads(plan, "utkf") == []
    assert rule_params.prepare_runtime(plan, "utkf") == 5 + 20000 // 4000
    assert rule_params.prepare_runtime(plan, "bike") == 2
    images_mb = 20000 * 3 * 200 * 200 / 2**20
    assert rule_params.prepare_mem_mb(plan, "utkf", 0) == 1000 + round(4 * images_mb + 0.5)
    assert rule_params.prepare_mem_mb(plan, "bike", 0) == 2000
    assert rule_params.prepare_mem_mb(plan, "bike", 50) == 3000


def test_the_plan_says_whether_there_is_a_reproduction():
    demo = rule_params.build_plan(load(ROOT / "config" / "config.yaml"))
    assert demo.reproduction is None
    with contextlib.chdir(ROOT):  # the reference file is named relative to the root
        paper = rule_params.build_plan(load(ROOT / "config" / "paper.yaml"), check_files=False)
    assert paper.reproduction["reference"] == "config/paper-reference.yaml"


@pytest.mark.workflow
def test_paper_plans_at_most_120_training_jobs_within_5_s(copy_workflow, tmp_path, data_dir):
    """config/paper.yaml's 550 runs train in packs; its dry run (start-up, config checks, DAG)
    stays quick. The Slurm client tools are shadowed: with the Slurm executor plugin installed
    and no controller, each Snakemake start waits ~9 s for `scontrol` (bench/README.md)."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for tool in ("scontrol", "sacct", "squeue", "sinfo"):
        (shadow / tool).write_text("#!/bin/sh\nexit 1\n")
        (shadow / tool).chmod(0o755)
    env = {
        **os.environ,
        "BIV_DATA_DIR": str(data_dir),
        "PATH": f"{shadow}{os.pathsep}{os.environ['PATH']}",
    }
    workdir = copy_workflow(tmp_path / "workflow")
    command = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules"]
    start = time.perf_counter()
    proc = subprocess.run(
        [*command, "--configfile", "config/paper.yaml"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:", 1)[1], re.MULTILINE))
    assert int(counts["run_folder"]) == 550 and int(counts["train"]) <= 120
    assert elapsed <= 5.0, f"dry run of paper.yaml took {elapsed:.1f} s"
