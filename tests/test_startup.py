"""Start-up: a training job imports torch and nothing avoidable beyond it (no ``torch._dynamo``,
which ``torch.optim.Optimizer`` pulls in)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# A training that checkpoints, crashes after its second checkpoint and resumes: the optimizer is
# built, steps, zeroes gradients, saves and loads its state; evaluation and prediction run too.
TRAINING = r"""
import json, sys
from pathlib import Path

import torch

import biv.data.prepared
import biv.config.noise
import biv.noise.files
import biv.train.loop

tmp = Path(sys.argv[1])
gen = torch.Generator().manual_seed(0)
x = torch.randn(50, 3, generator=gen)
y = 10 + x @ torch.tensor([1.0, -2.0, 0.5])
biv.data.prepared.write(
    tmp / "data.npz",
    {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:],
     "x_mean": x[:40].mean(0), "x_std": x[:40].std(0), "y_mean": float(y[:40].mean()),
     "y_std": float(y[:40].std()), "meta": {"dataset": "toy"}},
)
setting = {"mode": "boundaries", "components": [{"a": 0, "b": 4}]}
biv.noise.files.write_draw_file(
    tmp / "noise.npz", y[:40].numpy(), biv.config.noise.resolve(setting).to_dict(), [1]
)
params = {
    "experiment": "startup", "loss_name": "cutoff", "seed": 1,
    "dataset": {"name": "toy", "file": str(tmp / "data.npz")},
    "noise": {"name": "n", "file": str(tmp / "noise.npz")},
    "loss": {"type": "cutoff", "threshold": 2.0},
    "model": {"name": "mlp", "hidden": [8], "batchnorm": True},
    "training": {"lr": 0.01, "batch_size": 8, "epochs": 2, "eval_every": 2,
                 "checkpoint_every": 2, "device": "cpu"},
}
save, saves = biv.train.loop.save_checkpoint, []

def save_then_crash(*args):
    save(*args)
    saves.append(1)
    if len(saves) == 2:
        raise KeyboardInterrupt

biv.train.loop.save_checkpoint = save_then_crash
try:
    biv.train.loop.train(params, tmp / "run")
except KeyboardInterrupt:
    pass
biv.train.loop.save_checkpoint = save
summary = biv.train.loop.train(params, tmp / "run")
run = json.loads((tmp / "run" / "run.json").read_text())
print(json.dumps({
    "dynamo": sorted(m for m in sys.modules if m.startswith("torch._dynamo")),
    "resumed_from_step": run["run"]["resumed_from_step"],
    "steps": summary["steps"],
}))
"""


def test_training_does_not_import_torch_dynamo(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", TRAINING, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"dynamo": [], "resumed_from_step": 4, "steps": 10}


TORCH_FREE_SCRIPTS = (
    "aggregate",
    "collect_benchmarks",
    "estimate_noise",
    "plot_learning_curves",
    "prepare_dataset",
    "plot_sweep",
    "provenance",
    "reproduction",
)


@pytest.mark.parametrize("script", TORCH_FREE_SCRIPTS)
def test_rules_without_tensor_work_import_no_torch(script):
    root = Path(__file__).resolve().parents[1]
    source = (root / "scripts" / f"{script}.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports, script
    code = "\n".join([*imports, "import sys", "assert 'torch' not in sys.modules, 'torch'"])
    subprocess.run([sys.executable, "-c", code], check=True)


def test_planning_a_workflow_imports_no_torch():
    code = (
        "import sys\nfrom biv.workflow import check, rule_params\nassert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_preparing_a_dataset_imports_no_torch(tmp_path):
    """The prepared file is a numpy archive: the prepare job costs its work, not a torch start."""
    code = f"""
import sys
from biv import data
cfg = {{"kind": "synthetic", "n_train": 20, "n_test": 10, "seed": 0}}
data.prepare("s", cfg, {str(tmp_path / "s.npz")!r}, stats_path={str(tmp_path / "s.json")!r})
assert "torch" not in sys.modules, "torch"
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "s.npz").is_file() and (tmp_path / "s.json").is_file()
