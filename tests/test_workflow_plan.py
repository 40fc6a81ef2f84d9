"""The plan built from a config: cross-references, sweeps, run parameters, bad input."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from biv.config import ConfigError, build_plan
from biv.workflow import rule_params
from biv.workflow.plan import load_plan

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
    plan = load_plan(demo)
    assert len(plan.runs) == 4 * 3 + 1 * 3
    assert plan.noise_settings() == [("synthetic", "mixture")]
    assert plan.experiments["demo"].baseline == "l2"
    assert plan.experiments["demo-clean"].noise is None


def test_run_params_of_one_run(demo):
    plan = load_plan(demo)
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
    plan = load_plan(config)
    names = [n for n in plan.experiments if n.startswith("s__")]
    assert names == ["s__epsilon-0p01", "s__epsilon-1"]
    assert plan.experiments["s__epsilon-0p01"].losses["biv"].to_dict() == {
        "type": "biv",
        "epsilon": 0.01,
    }
    assert plan.experiments["s__epsilon-1"].noise == "mixture"
    # the base experiment is untouched and no new noise setting appears
    assert plan.experiments["demo"].losses["biv"].params == {"epsilon": 0.5}
    assert plan.noise_settings() == load_plan(demo).noise_settings()


def test_grid_sweep_derives_noise_settings(demo):
    config = with_sweep(
        demo,
        {
            "experiment": "demo",
            "vary": {"training.batch_size": [16, 32], "noise.components.1.mean": [5.0, 20.0]},
            "losses": ["l2", "biv"],
        },
    )
    plan = load_plan(config)
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
    plan = load_plan(config)
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
    with pytest.raises(ConfigError, match=_escape(message)):
        load_plan(demo)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_schema_rejects_unsafe_names_and_unknown_keys(demo):
    from biv.config.validation import validated

    bad = copy.deepcopy(demo)
    bad["losses"]["b iv"] = {"type": "biv", "epsilon": 0.5}
    with pytest.raises(ConfigError, match="b iv"):
        validated(bad)
    bad = copy.deepcopy(demo)
    bad["losses"]["biv"]["epsilom"] = 0.5
    message = "losses.biv: Additional properties are not allowed ('epsilom' was unexpected)"
    with pytest.raises(ConfigError, match=_escape(message)):
        validated(bad)


def test_impossible_noise_setting_fails_with_its_key(demo):
    demo["noise"]["mixture"]["components"][0] = {"mean": 1.0, "var": 5.0}
    with pytest.raises(ConfigError, match=r"noise\.mixture\.components\[0\]\.var: 5\.0"):
        load_plan(demo)


def test_impossible_swept_noise_names_the_sweep_point(demo):
    config = with_sweep(demo, {"experiment": "demo", "vary": {"noise.p": [0.5, 1.5]}})
    with pytest.raises(ConfigError, match=r"^sweeps\.s\.vary\.noise\.p\[1\]: 1\.5 is not allowed"):
        load_plan(config)


def test_only_mlp_trainings_are_grouped_for_clusters():
    config = load(ROOT / "config" / "paper.yaml")
    plan = build_plan(config)
    assert rule_params.train_group(plan, "bike") == "train-mlp"
    assert rule_params.train_group(plan, "bike-epsilon__epsilon-0p01") == "train-mlp"
    assert rule_params.train_group(plan, "utkf") is None


@pytest.mark.parametrize(("device", "gpus"), [("auto", 1), ("cuda", 1), ("cpu", 0)])
def test_the_training_device_decides_the_gpu_request(device, gpus):
    config = load(ROOT / "config" / "paper.yaml")
    for name in ("bike", "utkf"):
        config["experiments"][name].setdefault("training", {})["device"] = device
    plan = build_plan(config)
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
    plan = build_plan(config)
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
    plan = build_plan(config)
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
    demo = load_plan(load(ROOT / "config" / "config.yaml"))
    assert demo.reproduction is None
    with contextlib.chdir(ROOT):  # the reference file is named relative to the root
        paper = build_plan(load(ROOT / "config" / "paper.yaml"))
    assert paper.reproduction.reference == "config/paper-reference.yaml"


@pytest.mark.workflow
def test_paper_plans_a_job_per_pack_and_none_per_run_within_5_s(copy_workflow, tmp_path, data_dir):
    """config/paper.yaml's 550 runs train in at most 120 packs, and each run's folder is in its
    pack's output: the jobs are the packs' and the other rules' (none per run, so no submit-host
    job per run). Its dry run (start-up, config checks, DAG) stays quick. The Slurm client tools
    are shadowed: with the Slurm executor plugin installed and no controller, each Snakemake
    start waits ~9 s for `scontrol` (bench/README.md)."""
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
    table = out.split("Job stats:", 1)[1]
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}
    with contextlib.chdir(ROOT):
        plan = build_plan(load(ROOT / "config" / "paper.yaml"))
    assert len(plan.runs) == 550 and len(plan.packs) <= 120
    others = {
        "download": len(rule_params.downloads(plan)),
        "prepare_dataset": len({exp.dataset for exp in plan.experiments.values()}),
        "estimate_noise": len(plan.noise_settings()),
        "draw_noise": len(plan.noise_draws),  # one per setting and seed block: none per run
        "plot_noise": len(plan.noise_settings()),
        "aggregate": 1,
        "plot_learning_curves": len(plan.figures),
        "plot_sweep": len(plan.sweeps),
        "provenance": 1,
        "reproduction": 1,
        "collect_benchmarks": 1,
        "all": 1,
    }
    assert counts.pop("train", 0) + counts.pop("train_cpu", 0) == len(plan.packs)
    assert counts.pop("total") == len(plan.packs) + sum(others.values())
    assert counts == {rule: n for rule, n in others.items() if n}
    assert elapsed <= 5.0, f"dry run of paper.yaml took {elapsed:.1f} s"


def test_no_rule_runs_a_python_found_on_path():
    """A `shell:` command starting `python` runs whatever `python` is first on PATH (one without
    the workflow's dependencies when Snakemake is started from a virtual environment without
    activating it); `script:` runs Snakemake's own interpreter. No rule has such a command."""
    rules = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
    for path in rules:
        text = path.read_text()
        for command in re.findall(r"^\s*shell:\s*\n?\s*[rf]?(\"{1,3}|'{1,3})(.*)", text, re.M):
            assert not re.match(r"\s*(\S*/)?python[\d.]*\b", command[1]), (path.name, command)


def readme_noise_examples() -> dict:
    """The ``noise:`` example block of config/README.md."""
    text = (ROOT / "config" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    (block,) = [b for b in blocks if "max-hetero:" in b]
    return yaml.safe_load(block)["noise"]


@pytest.mark.workflow
def test_readme_noise_examples_pass_biv_check_and_plan_in_snakemake(demo, tmp_path, copy_workflow):
    """One validation, with the schema's defaults, for `biv check` and the workflow: a component
    without `distribution` takes the setting's default (uniform) in both."""
    from biv.workflow.check import main as check_main

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["noise"] = readme_noise_examples()
    config["experiments"]["demo"]["noise"] = "max-hetero"
    path = tmp_path / "readme.yaml"
    path.write_text(yaml.safe_dump(config))
    assert check_main([str(path)]) == 0
    workdir = copy_workflow(tmp_path / "workflow")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", str(path)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "estimate_noise" in proc.stdout + proc.stderr


def bike_folder(path: Path, rows: int) -> str:
    """A local Bike-like folder: hour.csv with a header and ``rows`` records (not the published
    file: the plan counts records, the loader checks the values and checksum)."""
    path.mkdir()
    lines = ["instant,dteday,cnt", *(f"{i},2011-01-01,{i}" for i in range(rows))]
    (path / "hour.csv").write_text("\n".join(lines) + "\n\n")
    return str(path)


def test_local_data_too_small_for_its_sizes_fails_at_plan_time(demo, tmp_path):
    demo["datasets"]["bike"] = {
        "kind": "bike",
        "path": bike_folder(tmp_path / "bike", 30),
        "train_size": 25,
        "test_size": 6,
    }
    demo["experiments"]["demo-clean"]["dataset"] = "bike"
    demo["experiments"]["demo-clean"]["training"] = {"batch_size": 5}
    with pytest.raises(ConfigError) as err:
        load_plan(demo)
    assert str(err.value) == (
        "datasets.bike.train_size: 25 + test_size 6 = 31 exceeds the 30 records of "
        f"{tmp_path / 'bike' / 'hour.csv'}; allowed with this test_size: at most 24"
    )
    demo["datasets"]["bike"]["train_size"] = 24
    load_plan(demo)
    with zipfile.ZipFile(tmp_path / "bike.zip", "w") as zf:  # the publisher zip: the same count
        zf.write(tmp_path / "bike" / "hour.csv", "Bike-Sharing-Dataset/hour.csv")
    demo["datasets"]["bike"].update(path=str(tmp_path / "bike.zip"), test_size=7)
    with pytest.raises(ConfigError, match=r"^datasets\.bike\.train_size: 24 \+ test_size 7 = 31"):
        load_plan(demo)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("day.csv", "instant\n1\n")
    demo["datasets"]["bike"]["path"] = str(tmp_path / "other.zip")
    with pytest.raises(ConfigError, match=r"^datasets\.bike\.path: zip .* has no member hour\.csv"):
        load_plan(demo)


def test_a_download_too_small_for_its_sizes_fails_at_plan_time(demo):
    """A download's records are those of the published files, known before it is downloaded."""
    url = "https://archive.ics.uci.edu/static/public/275/bike+sharing+dataset.zip"
    demo["datasets"]["bike"] = {"kind": "bike", "url": url, "train_size": 15000, "test_size": 3379}
    demo["experiments"]["demo-clean"]["dataset"] = "bike"
    with pytest.raises(ConfigError) as err:
        load_plan(demo)
    assert str(err.value) == (
        "datasets.bike.train_size: 15000 + test_size 3379 = 18379 exceeds the 17379 records of "
        "the published hour.csv; allowed with this test_size: at most 14000"
    )
    demo["datasets"]["bike"]["train_size"] = 14000
    load_plan(demo)
    demo["datasets"]["bike"]["sha256"] = {"hour.csv": "0" * 64}  # another version: not known
    demo["datasets"]["bike"]["train_size"] = 15000
    load_plan(demo)


@pytest.mark.parametrize(
    "name",
    [
        "config/config.yaml",
        "config/paper.yaml",
        "config/paper-lite.yaml",
        "config/own-data-example.yaml",
        "tests/configs/tiny.yaml",
    ],
)
def test_validated_fills_in_defaults_exactly_as_snakemake_validate(name):
    import json

    from biv.config.validation import validated

    config = yaml.safe_load((ROOT / name).read_text())
    theirs = copy.deepcopy(config)
    validate(theirs, str(ROOT / "config" / "schema.yaml"))
    ours = validated(config)
    assert json.dumps(ours) == json.dumps(theirs)  # the same keys, values and order
    assert config == yaml.safe_load((ROOT / name).read_text())  # a copy: the input unchanged


def paper_split_per_run() -> dict:
    """config/paper.yaml with the Bike data split by each run's seed (``split_seed: run``)."""
    config = load(ROOT / "config" / "paper.yaml")
    config["datasets"]["bike"]["split_seed"] = "run"
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


def test_split_per_run_gives_each_seed_its_split_and_its_own_packs():
    config = paper_split_per_run()
    plan = build_plan(config)
    fixed = build_plan(load(ROOT / "config" / "paper.yaml"))
    bike = {key: pack for key, pack in plan.packs.items() if key[0] == "bike"}
    # one seed per pack, named from its seed alone, trained on that seed's split
    names = sorted(key[2] for key in bike if key[1] == "l2")
    assert names == [f"seeds{s}-{s}" for s in range(1, 6)]
    for (_, loss, _), pack in bike.items():
        (seed,) = pack.seeds
        assert pack.dataset == plan.dataset_of("bike", seed) == f"bike__splitseed-{seed}"
        assert plan.datasets[pack.dataset].config == fixed.datasets["bike"].config.split_with(seed)
        spec = rule_params.run_spec(plan, "bike", loss, seed, "d.npz", "n.json")
        assert spec.dataset.name == pack.dataset
    # the split is that of split_seed: <seed>, whatever else the entry says
    entry = {**config["datasets"]["bike"], "split_seed": 3}
    assert (
        plan.datasets["bike__splitseed-3"].config
        == build_plan({**config, "datasets": {**config["datasets"], "bike": entry}})
        .datasets["bike"]
        .config
    )
    # a sweep of the Bike experiments is split per run as well; UTKFace keeps packs of 5
    sweep = [p for key, p in plan.packs.items() if key[0].startswith("bike-epsilon")]
    assert {p.dataset for p in sweep} == {f"bike__splitseed-{s}" for s in range(1, 6)}
    assert plan.packs["utkf", "l2", "seeds1-5"].dataset == "utkf"
    prepared = [f"bike__splitseed-{s}" for s in range(1, 6)]
    assert plan.prepared_datasets() == [*prepared, "utkf"]
    assert ("bike__splitseed-2", "bike-gamma") in plan.noise_settings()
    assert not any(dataset == "bike" for dataset, _ in plan.noise_settings())
    # the publisher zip is read by the splits' preparations, not by the entry split per run
    (users,) = rule_params.downloads(plan).values()
    assert sorted(users) == prepared
    assert users["bike__splitseed-1"]["split_seed"] == 1


def test_a_sweep_of_the_split_seed_and_a_split_per_run_share_a_dataset():
    """Named from its content: the split of seed 2 is one dataset, however it was asked for."""
    config = paper_split_per_run()
    config["sweeps"] = {
        "splits": {"experiment": "bike-clean", "vary": {"dataset.split_seed": [2, "run"]}}
    }
    plan = build_plan(config)
    assert plan.experiments["splits__splitseed-2"].dataset == "bike__splitseed-2"
    assert plan.dataset_of("splits__splitseed-2", 2) == plan.dataset_of("bike", 2)
    assert plan.dataset_of("splits__splitseed-2", 3) == "bike__splitseed-2"
    assert plan.datasets["bike__splitseed-run"].config.split_per_run
    assert plan.dataset_of("splits__splitseed-run", 4) == "bike__splitseed-4"
    config["sweeps"]["splits"]["vary"] = {"dataset.train_size": [1000]}
    plan = build_plan(config)
    assert plan.dataset_of("splits__trainsize-1000", 4) == "bike__trainsize-1000_splitseed-4"
    assert plan.datasets["bike__trainsize-1000_splitseed-4"].config.train_size == 1000


def test_split_seed_run_in_a_legacy_data_config_splits_with_the_command_seed(tmp_path):
    from biv.legacy.mapping import dataset_config

    datasets = {"bike": {"kind": "bike", "path": "/data/bike", "split_seed": "run"}}
    cfg = dataset_config(
        "bike", 7000, 3379, datasets=datasets, source="x", data_dir=None, image_size=None, seed=4
    )
    assert cfg["split_seed"] == 4
