"""The typed spec: sweeps expand by value, names follow content, errors name the user's key,
defaults live in one place, and planning imports no torch."""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
import sys
import zipfile
from dataclasses import astuple
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from biv.config import (
    TRAINING_DEFAULTS,
    ConfigError,
    LossSpec,
    RunSpec,
    build_plan,
    pack_name,
)
from biv.config.dataset import FILES, parse
from biv.config.naming import canonical
from biv.data import prepare
from biv.data.sources import fetch
from biv.losses import registered
from biv.workflow import rule_params
from biv.workflow.check import main as check_main
from biv.workflow.plan import checked_plan

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())


def load(name: str) -> dict:
    config = yaml.safe_load((ROOT / "config" / name).read_text())
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


@pytest.fixture
def demo() -> dict:
    return load("config.yaml")


SHIPPED = sorted(
    p.name
    for p in (ROOT / "config").glob("*.yaml")
    if p.name not in ("schema.yaml", "paper-reference.yaml")
)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_is_valid_and_plans(name):
    assert build_plan(load(name)).runs


@pytest.fixture(scope="module")
def paper_plan():
    return build_plan(load("paper.yaml"))


def files(exp) -> dict:
    """Input files as the train rule would name them (their names do not matter here)."""
    return {"dataset_file": "data.npz", "noise_file": None if exp.noise is None else "noise.npz"}


def run_content(plan, run) -> str:
    """Everything a training depends on, with the run's own names left out."""
    exp = plan.experiments[run.experiment]
    spec = rule_params.run_spec(
        plan, run.experiment, run.loss_name, run.seed, **files(exp)
    ).to_dict()
    spec["dataset"] = plan.datasets[exp.dataset].config.to_dict()
    spec["noise"] = None if exp.noise is None else plan.noise[exp.noise].to_dict()
    del spec["experiment"], spec["loss_name"]
    return canonical(spec)


def test_every_point_of_the_paper_studies_trains_distinct_parameters(paper_plan):
    assert len(paper_plan.sweeps) == 9
    for name, sweep in paper_plan.sweeps.items():
        runs = [r for r in paper_plan.runs if paper_plan.experiments[r.experiment].sweep == name]
        contents = {run_content(paper_plan, r) for r in runs}
        assert len(contents) == len(runs), name
        n_points = 1
        for values in sweep.vary.values():
            n_points *= len(values)
        assert len(sweep.points) == n_points


def test_batch_size_and_mu_p_study_trains_three_noise_settings(paper_plan):
    sweep = paper_plan.sweeps["bike-batch-size"]
    noises = {paper_plan.experiments[p.experiment].noise for p in sweep.points}
    means = sorted(paper_plan.noise[n].mixture.mean for n in noises)
    assert means == pytest.approx([5000, 10000, 20000])
    shapes = paper_plan.sweeps["bike-gamma-shape"].points
    shape = sorted(
        paper_plan.noise[paper_plan.experiments[p.experiment].noise].mixture.components[0].shape
        for p in shapes
    )
    assert shape == pytest.approx([0.5, 1.0])


@pytest.mark.parametrize(
    "vary",
    [
        {"losses.biv.epsilon": [0.01, 0.1, 1]},
        {"training.batch_size": [16, 64], "noise.p": [0.2, 0.5, 0.8]},
        {"noise.components.1": [{"mean": 5.0, "var": 0}, {"mean": 20.0, "var": 1.0}]},
        {"dataset.n_train": [300, 600], "losses.biv.epsilon": [0.1, 0.5], "noise.p": [0.3]},
        {"losses.biv": [{"type": "biv", "epsilon": 0.1}, {"type": "biv_adaptive"}]},
    ],
)
def test_distinct_trainings_are_the_product_of_values_seeds_and_losses(demo, vary):
    seeds = [4, 5]
    losses = ["l2", "biv"]
    demo["sweeps"] = {"s": {"experiment": "demo", "vary": vary, "losses": losses, "seeds": seeds}}
    plan = checked_plan(demo)
    runs = [r for r in plan.runs if plan.experiments[r.experiment].sweep == "s"]
    assert len(runs) == len({(r.experiment, r.loss_name, r.seed) for r in runs})
    expected = 0
    for loss in losses:  # a loss's trainings differ by the values of the paths that reach it
        reaching = [
            v for p, v in vary.items() if not p.startswith("losses.") or p.split(".")[1] == loss
        ]
        expected += len(list(itertools.product(*reaching))) * len(seeds)
    assert len({run_content(plan, r) for r in runs}) == expected


def test_names_follow_content_readable_or_hashed(demo):
    demo["sweeps"] = {
        "a": {"experiment": "demo", "vary": {"noise.p": [0.25]}},
        "b": {"experiment": "demo", "vary": {"noise.p": [0.25], "training.lr": [0.01]}},
        "c": {"experiment": "demo", "vary": {"training.lr": [0.01, "x y"]}},
    }
    with pytest.raises(ConfigError):  # "x y" is no learning rate, but it gets a name first
        checked_plan(demo)
    demo["sweeps"]["c"]["vary"]["training.lr"] = [0.01, 0.02]
    plan = checked_plan(demo)
    # the same derived setting in two sweeps shares one name and one set of noise draws
    assert plan.experiments["a__p-0p25"].noise == plan.experiments["b__p-0p25_lr-0p01"].noise
    assert plan.experiments["a__p-0p25"].noise == "mixture__p-0p25"
    long = {
        "noise.components.1": [
            {"mean": 12.345678901234, "var": 0.123456789012345, "distribution": "gamma"}
        ]
    }
    demo["sweeps"] = {"d": {"experiment": "demo", "vary": long}}
    (name,) = [n for n in checked_plan(demo).experiments if n.startswith("d__")]
    assert re.fullmatch(r"d__components1-h[0-9a-f]{8}", name)


def test_duplicate_points_and_seeds_are_errors_naming_the_sweep(demo):
    demo["sweeps"] = {"s": {"experiment": "demo", "vary": {"losses.biv.epsilon": [0.1, 0.10]}}}
    with pytest.raises(ConfigError, match=r"^sweeps\.s\.vary\.losses\.biv\.epsilon\[1\]: 0\.1 "):
        checked_plan(demo)
    demo["sweeps"] = {"s": {"experiment": "demo", "vary": {"training.lr": [1, 1.0]}}}
    with pytest.raises(ConfigError, match=r"sweeps\.s\.vary\.training\.lr\[1\]: 1\.0 repeats"):
        checked_plan(demo)
    mapping = [{"mean": 5.0, "var": 0}, {"var": 0, "mean": 5}]
    demo["sweeps"] = {"s": {"experiment": "demo", "vary": {"noise.components.1": mapping}}}
    with pytest.raises(ConfigError, match=r"noise\.components\.1\[1\]: .* repeats \[0\]"):
        checked_plan(demo)
    demo["sweeps"] = {"s": {"experiment": "demo", "vary": {"noise.p": [0.2]}, "seeds": [1, 1]}}
    with pytest.raises(ConfigError, match=r"^sweeps\.s\.seeds: \[1, 1\] repeats seed 1"):
        checked_plan(demo)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (
            lambda c: c.update(
                sweeps={
                    "bike-gamma-shape": {
                        "experiment": "demo",
                        "vary": {"noise.components.0": [{"mean": 1.0}, {"mean": 1.0, "var": 5}]},
                    }
                }
            ),
            "sweeps.bike-gamma-shape.vary.noise.components.0[0]: needs exactly one of 'var'",
        ),
        (
            lambda c: c.update(
                sweeps={"sw": {"experiment": "demo", "vary": {"dataset.n_trian": [500]}}}
            ),
            "sweeps.sw.vary.dataset.n_trian[0]: 500 is not allowed",
        ),
        (
            lambda c: c.update(
                sweeps={"sw": {"experiment": "demo", "vary": {"training.batch_size": [16, 0]}}}
            ),
            "sweeps.sw.vary.training.batch_size[1]: 0 is not allowed; expected an integer >= 1",
        ),
        (
            lambda c: c.update(
                sweeps={"sw": {"experiment": "demo", "vary": {"training.batch_size": [4000]}}}
            ),
            "sweeps.sw.vary.training.batch_size[0]: 4000 is larger than the training set",
        ),
        (
            lambda c: c.update(
                sweeps={
                    "sw": {
                        "experiment": "demo",
                        "vary": {"losses.biv": [{"type": "biv", "epsilon": -1}]},
                    }
                }
            ),
            "sweeps.sw.vary.losses.biv[0].epsilon: -1 is not allowed",
        ),
        (
            lambda c: c["losses"].update({"cutoff-1": {"type": "cutoff"}}),
            "losses.cutoff-1.threshold: missing (required)",
        ),
        (
            lambda c: c["experiments"]["demo"]["training"].update(epochs=10**12),
            "experiments.demo.training.epochs: 1000000000000 is not allowed; expected an "
            "integer >= 1 and <= 100000",
        ),
        (
            lambda c: c["experiments"]["demo"]["training"].update(batch_size=2001),
            "experiments.demo.training.batch_size: 2001 is larger than the training set of "
            "dataset 'synthetic' (2000 samples); allowed: 1 to 2000",
        ),
        (
            lambda c: (
                c["models"]["mlp"].update(batchnorm=True)
                or c["experiments"]["demo"]["training"].update(batch_size=1999)
            ),
            "experiments.demo.training.batch_size: 1999 leaves a last batch of 1 sample",
        ),
        (
            lambda c: (
                c["models"]["mlp"].update(batchnorm=True)
                or c["experiments"]["demo"]["training"].update(
                    eval_protocol="original", eval_batch_size=333
                )
            ),
            "experiments.demo.training.eval_batch_size: 333 leaves a last test batch of 1 sample "
            "of the 1000 test samples",
        ),
        (
            lambda c: c["experiments"]["demo"]["training"].update(eval_protocol="train"),
            "experiments.demo.training.eval_protocol: 'train' is not allowed; expected one of "
            "['standard', 'original']",
        ),
        (
            lambda c: (
                c["datasets"].update(
                    {
                        "bike": {
                            "kind": "bike",
                            "path": "/nonexistent/bike",
                            "train_size": 500,
                            "test_size": 5,
                        }
                    }
                )
                or c["experiments"]["demo"].update(dataset="bike")
            ),
            "datasets.bike.path: '/nonexistent/bike' does not exist",
        ),
        (
            lambda c: (
                c["models"].update({"cnn": {"name": "cnn"}})
                or c["experiments"]["demo"].update(model="cnn")
            ),
            "experiments.demo.model: 'cnn' needs RGB images (3, H, W), got tabular features",
        ),
        (
            lambda c: c["experiments"]["demo"].update(seeds=[1, 2**64]),
            "experiments.demo.seeds[1]: 18446744073709551616 is not allowed; expected an "
            "integer >= 0 and <= 9223372036854775807",
        ),
        (
            lambda c: c["experiments"]["demo"]["training"].update(pack_size=0),
            "experiments.demo.training.pack_size: 0 is not allowed; expected an integer >= 1",
        ),
        (
            lambda c: c["datasets"]["synthetic"].update(n_train=10**12),
            "datasets.synthetic.n_train: 1000000000000 is not allowed; expected at most "
            "10,000,000 (held in memory)",
        ),
    ],
)
def test_errors_name_the_key_as_written(demo, edit, key):
    edit(demo)
    with pytest.raises(ConfigError) as err:
        checked_plan(demo)
    assert str(err.value).startswith(key), str(err.value)


def test_local_folder_without_expected_files(demo, tmp_path):
    demo["datasets"]["bike"] = {
        "kind": "bike",
        "path": str(tmp_path),
        "train_size": 500,
        "test_size": 5,
    }
    demo["experiments"]["demo"]["dataset"] = "bike"
    with pytest.raises(ConfigError, match=r"^datasets\.bike\.path: .* holds no hour\.csv"):
        checked_plan(demo)
    demo["datasets"]["faces"] = {
        "kind": "utkface",
        "path": str(tmp_path),
        "train_size": 500,
        "test_size": 5,
    }
    demo["experiments"]["demo"]["dataset"] = "faces"
    demo["models"]["mlp"] = {"name": "cnn"}
    demo["experiments"]["demo-clean"]["dataset"] = "faces"
    with pytest.raises(ConfigError, match=r"^datasets\.faces\.path: .* holds no \.jpg files"):
        checked_plan(demo)


def test_damaged_zip_and_missing_checksum_listing_are_found_before_any_job(demo, tmp_path):
    """A zip cut short (a partial copy) is named as damaged or truncated, by the plan and by the
    loader alike; a sha256 listing that is not there is found by the plan, not the job."""
    whole = tmp_path / "wine.zip"
    with zipfile.ZipFile(whole, "w") as zf:
        for name in ("winequality-red.csv", "winequality-white.csv"):
            zf.writestr(f"wine/{name}", "fixed acidity;quality\n" + "7.4;5\n" * 2000)
    cut = tmp_path / "wine-cut.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    wine = {"kind": "wine", "path": str(cut), "train_size": 500, "test_size": 5}
    demo["datasets"]["wine"] = wine
    demo["experiments"]["demo"]["dataset"] = "wine"
    damaged = r"wine-cut\.zip'? is a damaged or truncated zip \(\d+ bytes; no end-of-archive"
    with pytest.raises(ConfigError, match=r"^datasets\.wine\.path: '.*" + damaged):
        checked_plan(demo)
    with pytest.raises(ValueError, match=r"^datasets\.wine\.path: .*" + damaged):
        fetch("wine", parse("wine", wine), FILES["wine"], None)

    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "30_0_0_1.jpg").write_bytes(b"")
    demo["datasets"]["faces"] = {
        "kind": "utkface",
        "path": str(tmp_path / "faces"),
        "sha256": str(tmp_path / "absent.SHA256SUMS"),
        "train_size": 4,
        "test_size": 1,
    }
    demo["experiments"]["demo"]["dataset"] = "faces"
    demo["models"]["mlp"] = {"name": "cnn"}
    demo["experiments"]["demo-clean"]["dataset"] = "faces"
    demo["experiments"]["demo"]["training"]["batch_size"] = 2
    missing = r"^datasets\.faces\.sha256: '.*absent\.SHA256SUMS' is not a file; expected a"
    with pytest.raises(ConfigError, match=missing):
        checked_plan(demo)


def _bad_locations(root: Path) -> dict[str, dict]:
    """One dataset entry per problem with a local location (files made under ``root``)."""
    (root / "empty").mkdir()
    (root / "hidden").mkdir()
    (root / "hidden" / ".30_0_0_1.jpg").write_bytes(b"")  # hidden files are not images
    (root / "faces").mkdir()
    (root / "faces" / "30_0_0_1.jpg").write_bytes(b"")
    (root / "red.csv").write_text("fixed acidity;quality\n7.4;5\n")
    whole = root / "whole.zip"
    with zipfile.ZipFile(whole, "w") as zf:
        zf.writestr("hour.csv", "cnt\n1\n" * 500)
    (root / "cut.zip").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    sizes = {"train_size": 4, "test_size": 1}
    uci = {"kind": "bike", **sizes}
    faces = {"kind": "utkface", **sizes}
    return {
        "absent": {**uci, "path": str(root / "absent")},
        "no file": {**uci, "path": str(root / "empty")},
        "cut zip": {**uci, "path": str(root / "cut.zip")},
        "one of two files": {**uci, "kind": "wine", "path": str(root / "red.csv")},
        "unset variable": {**uci, "path": "$BIV_TEST_UNSET_VARIABLE/bike"},
        "no folder": {**faces, "path": str(root / "absent")},
        "no images": {**faces, "path": str(root / "hidden")},
        "no listing": {**faces, "path": str(root / "faces"), "sha256": str(root / "no.txt")},
    }


@pytest.mark.parametrize(
    "problem",
    [
        "absent",
        "no file",
        "cut zip",
        "one of two files",
        "unset variable",
        "no folder",
        "no images",
        "no listing",
    ],
)
def test_loaders_report_a_bad_location_as_the_plan_does(demo, tmp_path, problem):
    """One check, one message: the job's loader (also under a sweep's derived name) raises the
    very error the plan raises before any job."""
    cfg = _bad_locations(tmp_path)[problem]
    demo["datasets"] = {"ds": cfg}
    for exp in demo["experiments"].values():
        exp["dataset"] = "ds"
        exp["training"]["batch_size"] = 2
    if cfg["kind"] == "utkface":
        demo["models"]["mlp"] = {"name": "cnn"}
    with pytest.raises(ConfigError) as planned:
        checked_plan(demo)
    assert planned.value.key.startswith("datasets.ds.")
    for name in ("ds", "ds__trainsize-4"):
        with pytest.raises(ConfigError) as loaded:
            prepare(name, cfg, tmp_path / "out.npz", tmp_path / "downloads")
        assert str(loaded.value) == str(planned.value)
    assert not (tmp_path / "out.npz").exists()


def test_reproduction_panels_are_checked_against_the_reference_file(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reference = "read_off_fraction: 0.025\npanels: {bike: {axis: [0, 1], best: {l2: 1}}}\n"
    (tmp_path / "ref.yaml").write_text(reference)
    demo["reproduction"] = {
        "reference": "ref.yaml",
        "figure": "learning_curves",
        "panels": {
            "utkf": {
                "experiment": "demo",
                "l2": "l2",
                "biv": "biv",
                "no_noise": {"experiment": "demo-clean", "loss": "l2"},
            }
        },
    }
    with pytest.raises(ConfigError, match=r"^reproduction\.panels\.utkf: no panel 'utkf' in "):
        checked_plan(demo)
    # the file's content is checked when the config is loaded, not when the report is written
    (tmp_path / "ref.yaml").write_text(reference.replace("0.025", "25"))
    with pytest.raises(ConfigError, match=r"^reproduction\.reference: ref\.yaml: read_off_fr"):
        checked_plan(demo)
    demo["reproduction"]["reference"] = "missing.yaml"
    with pytest.raises(ConfigError, match=r"^reproduction\.reference: 'missing\.yaml' does not"):
        checked_plan(demo)
    with pytest.raises(ConfigError, match=re.escape(f"a relative path is read from {Path.cwd()}")):
        checked_plan(demo)


def test_run_parameters_round_trip_with_defaults_filled(demo):
    plan = checked_plan(demo)
    run = rule_params.run_spec(plan, "demo", "biv", 2, **files(plan.experiments["demo"]))
    params = run.to_dict()
    assert RunSpec.from_dict(params) == run
    assert params["training"] == {**TRAINING_DEFAULTS, **demo["experiments"]["demo"]["training"]}
    assert params["loss"] == {"type": "biv", "epsilon": 0.5}
    assert RunSpec.from_dict(copy.deepcopy(params) | {"seed": 2}).to_dict() == params
    bad = copy.deepcopy(params)
    bad["training"]["checkpoint_every"] = -1
    with pytest.raises(ConfigError, match=r"^training\.checkpoint_every: -1 is not allowed"):
        RunSpec.from_dict(bad)


def pack_seeds(plan) -> dict[tuple[str, str, str], tuple[int, ...]]:
    return {key: pack.seeds for key, pack in plan.packs.items()}


def test_packs_are_blocks_of_consecutive_seeds_per_experiment_and_loss(demo):
    demo["experiments"]["demo"]["seeds"] = [12, 1, 2, 7, 5, 6]
    demo["experiments"]["demo"]["training"]["pack_size"] = 5
    plan = checked_plan(demo)
    packs = {
        k: s for k, s in pack_seeds(plan).items() if k[:2] in {("demo", "l2"), ("demo", "biv")}
    }
    assert packs == {
        ("demo", "l2", "seeds11-15"): (12,),
        ("demo", "l2", "seeds1-5"): (1, 2, 5),
        ("demo", "l2", "seeds6-10"): (6, 7),
        ("demo", "biv", "seeds11-15"): (12,),
        ("demo", "biv", "seeds1-5"): (1, 2, 5),
        ("demo", "biv", "seeds6-10"): (6, 7),
    }
    assert sorted((r for p in plan.packs.values() for r in p.runs), key=astuple) == sorted(
        plan.runs, key=astuple
    )
    assert [pack_name(s, 3) for s in (0, 1, 3, 4)] == [
        "seeds-2-0",
        "seeds1-3",
        "seeds1-3",
        "seeds4-6",
    ]


def test_adding_a_seed_or_a_loss_changes_only_its_own_packs(demo):
    before = pack_seeds(checked_plan(demo))
    demo["experiments"]["demo"]["seeds"].append(4)
    after = pack_seeds(checked_plan(demo))
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {("demo", loss, "seeds1-5") for loss in demo["experiments"]["demo"]["losses"]}
    demo["losses"]["mse2"] = {"type": "mse"}
    demo["experiments"]["demo"]["losses"].append("mse2")
    added = pack_seeds(checked_plan(demo))
    assert {k: s for k, s in added.items() if k[1] != "mse2"} == after
    assert {k for k in added if k[1] == "mse2"} == {("demo", "mse2", "seeds1-5")}


def test_pack_size_one_trains_one_run_per_pack(demo):
    for exp in demo["experiments"].values():
        exp.setdefault("training", {})["pack_size"] = 1
    plan = checked_plan(demo)
    assert [p.runs for p in plan.packs.values()] == [[r] for r in plan.runs]
    assert {p.name for p in plan.packs.values()} == {f"seeds{s}-{s}" for s in (1, 2, 3)}


def test_loss_defaults_fill_only_their_type():
    assert LossSpec.from_config("l", {"type": "biv"}).to_dict() == {"type": "biv", "epsilon": 0.5}
    assert LossSpec.from_config("l", {"type": "mse"}).to_dict() == {"type": "mse"}
    with pytest.raises(ConfigError, match=r"^l\.epsilon: unknown key"):
        LossSpec.from_config("l", {"type": "mse", "epsilon": 0.1})


def _readme_defaults(section: str) -> dict[str, str]:
    text = (ROOT / "config" / "README.md").read_text()
    body = text.split(f"## `{section}", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", body, flags=re.M)
    return {key: default.strip() for key, default in rows}


def _yaml_text(value) -> str:
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def test_defaults_agree_in_spec_schema_and_readme():
    training = SCHEMA["$defs"]["training"]["properties"]
    readme = _readme_defaults("experiments")
    for key, default in TRAINING_DEFAULTS.items():
        assert training[key]["default"] == default, key
        assert readme[f"training.{key}"] == _yaml_text(default), key
    readme = _readme_defaults("losses")
    for kind in registered().values():
        for name, fragment in kind.parameters.items():
            if "default" in fragment:
                assert readme[name] == _yaml_text(fragment["default"]), (kind.name, name)


def test_planning_imports_no_torch():
    code = (
        "import sys, yaml\n"
        "from snakemake.utils import validate\n"
        "from biv.config import build_plan\n"
        "from biv.workflow import rule_params\n"
        f"c = yaml.safe_load(open({str(ROOT / 'config' / 'paper.yaml')!r}))\n"
        f"validate(c, {str(ROOT / 'config' / 'schema.yaml')!r})\n"
        "plan = build_plan(c)\n"
        "[rule_params.run_spec(plan, r.experiment, r.loss_name, r.seed, 'd', None)\n"
        " for r in plan.runs\n"
        " if plan.experiments[r.experiment].noise is None]\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_biv_check_reports_files_lines_and_keys(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("datasets:\n  a: {kind: bike\nmodels: {}\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    wrong = tmp_path / "wrong.yaml"
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["losses"]["biv"]["epsilon"] = -1
    wrong.write_text(yaml.safe_dump(config))
    typo = tmp_path / "typo.yaml"
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["experiments"]["demo"]["training"]["batch_size"] = 5000
    typo.write_text(yaml.safe_dump(config))
    paths = [ROOT / "config" / "config.yaml", bad_yaml, empty, listing, wrong, typo]
    assert check_main([str(p) for p in paths]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("config.yaml: ok (2 experiments, 15 trainings, 5 training jobs)")
    assert re.match(rf"error: {re.escape(str(bad_yaml))}:3:\d+: YAML syntax error", out[1])
    assert out[2] == f"error: {empty}: the file is empty; expected a mapping of top-level keys"
    assert out[3].startswith(f"error: {listing}: the top level is a list")
    assert out[4] == f"error: {wrong}: losses.biv.epsilon: -1 is less than the minimum of 0"
    assert out[5].startswith(f"error: {typo}: experiments.demo.training.batch_size: 5000 is larger")


def test_model_defaults_agree_in_spec_schema_and_readme():
    from biv.config.model import MLP_DEFAULTS

    schema = SCHEMA["$defs"]["model"]["then"]["properties"]
    readme = _readme_defaults("models")
    for key, default in MLP_DEFAULTS.items():
        assert schema[key]["default"] == default, key
        assert readme[key] == _yaml_text(default), key
