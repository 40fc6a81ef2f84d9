"""Start-up: a training job imports torch and nothing avoidable beyond it (no ``torch._dynamo``,
which ``torch.optim.Optimizer`` pulls in); ``biv.optim.Adam`` equals ``torch.optim.Adam``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from biv.optim import Adam

# A training that checkpoints, crashes after its second checkpoint and resumes: the optimizer is
# built, steps, zeroes gradients, saves and loads its state; evaluation and prediction run too.
TRAINING = r"""
import json, sys
from pathlib import Path

import torch

import biv.train

tmp = Path(sys.argv[1])
gen = torch.Generator().manual_seed(0)
x = torch.randn(50, 3, generator=gen)
y = 10 + x @ torch.tensor([1.0, -2.0, 0.5])
torch.save(
    {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:],
     "x_mean": x[:40].mean(0), "x_std": x[:40].std(0), "y_mean": float(y[:40].mean()),
     "y_std": float(y[:40].std()), "meta": {"dataset": "toy"}},
    tmp / "data.pt",
)
var = torch.rand(40, generator=gen) * 4
torch.save(
    {"y_noisy": y[:40] + var.sqrt() * torch.randn(40, generator=gen), "var": var,
     "var_seen": var, "component": torch.zeros(40, dtype=torch.int8), "meta": {}},
    tmp / "noise.pt",
)
params = {
    "experiment": "startup", "loss_name": "cutoff", "seed": 1,
    "dataset": {"name": "toy", "file": str(tmp / "data.pt")},
    "noise": {"name": "n", "file": str(tmp / "noise.pt")},
    "loss": {"type": "cutoff", "threshold": 2.0},
    "model": {"name": "mlp", "hidden": [8], "batchnorm": True},
    "training": {"lr": 0.01, "batch_size": 8, "epochs": 2, "eval_every": 2,
                 "checkpoint_every": 2, "device": "cpu"},
}
save, saves = biv.train.save_checkpoint, []

def save_then_crash(*args):
    save(*args)
    saves.append(1)
    if len(saves) == 2:
        raise KeyboardInterrupt

biv.train.save_checkpoint = save_then_crash
try:
    biv.train.train(params, tmp / "run")
except KeyboardInterrupt:
    pass
biv.train.save_checkpoint = save
summary = biv.train.train(params, tmp / "run")
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


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )


def _train(make_optimizer, steps: int = 20, reload_at: int = 10):
    """Losses, final parameters and optimizer state of a short run; at ``reload_at`` the
    optimizer is rebuilt from its ``state_dict`` (as a resumed run does)."""
    model = _model()
    optimizer = make_optimizer(model.parameters())
    gen = torch.Generator().manual_seed(1)
    losses = []
    for step in range(steps):
        x, y = torch.randn(8, 4, generator=gen), torch.randn(8, generator=gen)
        loss = (model(x).squeeze(1) - y).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step % 7 == 3:
            model[0].bias.grad = None  # a parameter without gradient is left alone
        optimizer.step()
        losses.append(loss.detach())
        if step == reload_at:
            state = optimizer.state_dict()
            optimizer = make_optimizer(model.parameters())
            optimizer.load_state_dict(state)
    return torch.stack(losses), [p.detach().clone() for p in model.parameters()], optimizer


def test_adam_is_torch_adam_bit_for_bit_on_the_cpu():
    ours = _train(lambda p: Adam(p, lr=0.01))
    theirs = _train(lambda p: torch.optim.Adam(p, lr=0.01))
    assert torch.equal(ours[0], theirs[0])
    assert all(torch.equal(a, b) for a, b in zip(ours[1], theirs[1], strict=True))
    a, b = ours[2].state_dict(), theirs[2].state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i, state in b["state"].items():
        for key, value in state.items():
            assert a["state"][i][key].dtype == value.dtype
            assert a["state"][i][key].device == value.device
            assert torch.equal(a["state"][i][key], value), (i, key)


def test_adam_state_dict_loads_into_torch_adam_and_back():
    _, _, ours = _train(lambda p: Adam(p, lr=0.01))
    _, _, theirs = _train(lambda p: torch.optim.Adam(p, lr=0.01))
    model = _model()
    torch.optim.Adam(model.parameters(), lr=0.01).load_state_dict(ours.state_dict())
    mine = Adam(model.parameters(), lr=0.5)
    mine.load_state_dict(theirs.state_dict())
    assert mine.lr == 0.01
    assert torch.equal(mine.state[0]["exp_avg"], theirs.state_dict()["state"][0]["exp_avg"])


def test_adam_refuses_a_state_of_other_parameters():
    _, _, ours = _train(lambda p: Adam(p, lr=0.01), steps=2, reload_at=-1)
    with pytest.raises(ValueError, match="does not fit one group of 2"):
        Adam(torch.nn.Linear(2, 2).parameters(), lr=0.01).load_state_dict(ours.state_dict())


TORCH_FREE_SCRIPTS = (
    "aggregate",
    "collect_benchmarks",
    "plot_learning_curves",
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
    code = "import sys\nfrom biv import check, jobs\nassert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
