"""The loss registry: the loss types are the modules of biv.losses, the schema of a config's loss
comes from them, and adding a loss type is adding one module (shown by a toy one)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import biv.losses
from biv.config import ConfigError, LossSpec, build_plan, validation
from biv.losses import loss_schema, loss_type, registered
from biv.workflow import check

ROOT = Path(__file__).resolve().parents[1]

#: A loss type of its own module, as a user would add it: src/biv/losses/huber.py.
TOY = '''"""huber: the mean Huber loss of e = pred - target, quadratic within delta, linear past."""

from biv.losses._core import LossResult, LossType, prepare

DELTA = {
    "description": "where the loss turns from quadratic to linear (normalized label units)",
    "type": "number",
    "exclusiveMinimum": 0,
    "default": 1.0,
}


def compute(pred, target, var, params, var_host=None):
    e, _ = prepare(pred, target, var)
    size, delta = e.abs(), params["delta"]
    value = (0.5 * e.square()).where(size <= delta, delta * (size - 0.5 * delta))
    return LossResult(value.mean(), None)


LOSS = LossType(
    name="huber",
    description="mean Huber loss, quadratic for |e| <= delta",
    parameters={"delta": DELTA},
    compute=compute,
)
'''


@pytest.fixture
def huber_module(tmp_path, monkeypatch):
    """The toy module in a folder of the biv.losses package (as if in src/biv/losses)."""
    folder = tmp_path / "losses"
    folder.mkdir()
    (folder / "huber.py").write_text(TOY)
    monkeypatch.setattr(biv.losses, "__path__", [*biv.losses.__path__, str(folder)])
    registered.cache_clear()
    validation.schema.cache_clear()  # built from the registry
    yield
    monkeypatch.undo()
    registered.cache_clear()
    validation.schema.cache_clear()
    sys.modules.pop("biv.losses.huber", None)


def test_the_registered_types_and_what_they_declare():
    types = registered()
    assert list(types) == ["biv", "biv_adaptive", "cutoff", "iv", "mse"]
    assert [n for n, t in types.items() if t.host_variances] == ["biv_adaptive"]
    assert [n for n, t in types.items() if t.chooses_epsilon] == ["biv_adaptive"]
    assert [n for n, t in types.items() if t.kept] == ["cutoff"]
    assert {n: t.raw_units for n, t in types.items() if t.raw_units} == {"cutoff": ("threshold",)}
    assert {n for n, t in types.items() if t.variance_offset == "epsilon"} == {"iv", "biv"}
    with pytest.raises(ValueError, match=r"unknown loss type 'l1'; registered: biv, biv_adaptive"):
        loss_type("l1")


def test_importing_the_losses_imports_no_torch():
    code = (
        "import sys\n"
        "from biv.losses import loss_schema, registered\n"
        "registered(), loss_schema()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_new_module_is_a_registered_loss_type_in_the_schema(huber_module):
    assert list(registered()) == ["biv", "biv_adaptive", "cutoff", "huber", "iv", "mse"]
    schema = loss_schema()
    assert "huber" in schema["properties"]["type"]["enum"]
    assert "huber: mean Huber loss" in schema["properties"]["type"]["description"]
    spec = LossSpec.from_config("loss", {"type": "huber"})
    assert spec.to_dict() == {"type": "huber", "delta": 1.0}
    with pytest.raises(ConfigError, match=r"^loss\.delta: 0 is not allowed; expected a finite"):
        LossSpec.from_config("loss", {"type": "huber", "delta": 0})
    assert validated({"h": {"type": "huber"}})["h"] == {"type": "huber", "delta": 1.0}


def validated(losses: dict) -> dict:
    """The demo config with ``losses``, validated as the workflow and ``biv check`` validate a
    config (:func:`biv.config.validation.validated`): its losses, defaults filled."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return validation.validated(config | {"losses": losses})["losses"]


def schema_error(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        validation.validated(config)
    return str(err.value)


def test_the_schema_fills_each_types_defaults_only():
    losses = {
        "b": {"type": "biv"},
        "a": {"type": "biv_adaptive", "ratio": 0.9},
        "c": {"type": "cutoff", "threshold": 3},
        "l2": {"type": "mse"},
    }
    assert validated(losses) == {
        "b": {"type": "biv", "epsilon": 0.5},
        "a": {"type": "biv_adaptive", "ratio": 0.9},
        "c": {"type": "cutoff", "threshold": 3},
        "l2": {"type": "mse"},
    }


def demo_with_loss(loss: dict) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["losses"]["biv"] = loss
    return config


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ({"threshold": 5}, "losses.biv: 'type' is a required property"),
        ({"epsilon": 0.5}, "losses.biv: 'type' is a required property"),
        (
            {"type": "l1"},
            "losses.biv.type: 'l1' is not one of ['biv', 'biv_adaptive', 'cutoff', 'iv', 'mse']",
        ),
        ({"type": "cutoff"}, "losses.biv: 'threshold' is a required property"),
        ({"type": "biv", "epsilon": -1}, "losses.biv.epsilon: -1 is less than the minimum of 0"),
        (
            {"type": "mse", "epsilon": 0.5},
            "losses.biv: Additional properties are not allowed ('epsilon' was unexpected)",
        ),
    ],
)
def test_biv_check_names_a_missing_or_unknown_type(tmp_path, loss, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(demo_with_loss(loss)))
    assert schema_error(demo_with_loss(loss)) == message
    with pytest.raises(ValueError) as err:
        check.check(path)
    assert str(err.value) == f"{path}: {message}"


def test_the_plan_names_a_missing_type():
    with pytest.raises(ConfigError, match=r"^losses\.biv\.type: missing \(required\); one of \["):
        build_plan(demo_with_loss({"epsilon": 0.5}))


@pytest.mark.workflow
def test_snakemake_names_a_missing_type(tmp_path, copy_workflow):
    root = copy_workflow(tmp_path / "wf")
    (root / "bad.yaml").write_text(yaml.safe_dump(demo_with_loss({"threshold": 5})))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "bad.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "losses.biv: 'type' is a required property" in proc.stdout + proc.stderr


def huber_config() -> dict:
    """tests/configs/tiny.yaml's noisy experiment, trained with L2 and the toy loss only."""
    config = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    config = {k: config[k] for k in ("datasets", "noise", "models")}
    config["losses"] = {"l2": {"type": "mse"}, "huber": {"type": "huber", "delta": 0.5}}
    training = {"batch_size": 75, "epochs": 2, "eval_every": 2}
    config["experiments"] = {
        "toy": {"dataset": "syn", "model": "mlp", "noise": "mixture", "losses": ["l2", "huber"]}
        | {"seeds": [1], "training": training}
    }
    return config


@pytest.mark.workflow
@pytest.mark.slow
def test_adding_a_loss_type_is_adding_one_module(tmp_path, copy_workflow):
    """The workflow with one more module in src/biv/losses trains a loss of that type."""
    root = copy_workflow(tmp_path / "wf")
    (root / "src" / "biv" / "losses" / "huber.py").write_text(TOY)
    (root / "huber.yaml").write_text(yaml.safe_dump(huber_config()))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "huber.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    losses = {}
    for name, loss in (("l2", {"type": "mse"}), ("huber", {"type": "huber", "delta": 0.5})):
        run = root / "results" / "runs" / "toy" / name / "seeds1-5" / "seed1"
        assert json.loads((run / "run.json").read_text())["loss"] == loss
        assert json.loads((run / "summary.json").read_text())["steps"] == 8
        rows = (run / "metrics.csv").read_text().splitlines()[1:]
        losses[name] = [float(r.split(",")[-1]) for r in rows if ",train,loss," in r]
        assert len(losses[name]) == 8 and all(math.isfinite(x) for x in losses[name])
    # the same model, batches and labels at step 1: Huber(delta) <= e^2 / 2 < e^2
    assert losses["huber"][0] <= losses["l2"][0] / 2
    assert losses["huber"] != losses["l2"]
