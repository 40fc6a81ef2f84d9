"""The sections of the GPU check (bench/gpu_check.py), in the order they run. Each does its CPU
work first (float64 references, data, CPU runs), at reduced size without a GPU, then calls
``check.need_cuda()`` before its first CUDA-only step.

Tolerances compare float32 with float64 or two float32 computations; each is stated beside its
constant, with why it admits float32 round-off and not TF32 (10 mantissa bits: relative errors
near 5e-4 per product) or a wrong computation.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import gpu_check_inputs as inputs
import numpy as np
import torch
from gpu_check_report import Check, section
from torch.nn import functional as F

import biv
from biv.config import LossSpec, ModelSpec
from biv.train.devices import determinism
from biv.train.evaluation import BF16_MSE_RTOL
from biv.train.loop import train_pack
from biv.train.optim import PackAdam
from biv.train.pack_model import build_pack_model
from biv.train.step import Batch, Steps

ROOT = Path(__file__).resolve().parent.parent

#: fp32 against float64, a matrix product or convolution (relative Frobenius error): fp32's
#: round-off gives ~1e-7, TF32 ~5e-4 ("tolerance separates TF32" measures it, with inputs rounded
#: as TF32 rounds them).
EXACT_RTOL = 1e-5
#: one training step in fp32 against float64 (per member, relative error of the losses, of all
#: gradients together, of the test error sums). The CPU's fp32 (items "cpu float32 vs float64"):
#: 2e-7 (MLP), 2e-6 (CNN), 8e-6 (ResNet-18); cuDNN may pick Winograd or FFT convolutions, whose
#: fp32 error reaches ~1e-4. A wrong mask, loss or gradient is off by far more; TF32 itself is
#: measured in section "tf32".
STEP_RTOL = {"mlp": 1e-4, "cnn": 1e-3, "resnet18": 1e-3}
#: two trainings of the same runs that differ by round-off only (CUDA graphs against plain
#: steps, a fallback against a plain run, CUDA against the CPU): relative difference of the test
#: MSE (and training losses) over the run. Trajectories drift apart (Adam turns round-off into
#: steps of up to lr); item "cpu float32 vs float64" measures that drift for these runs: ~1e-7
#: (an MLP without BatchNorm, ``gpu_check_inputs.MLP_NO_BN``). A wrong replay or device
#: computation is off by percents.
DRIFT_RTOL = 1e-4


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """||got - expected|| / ||expected|| in float64 on the CPU (||got|| if expected is 0)."""
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    norm = float(expected.norm())
    return float((got - expected).norm()) / (norm if norm > 0 else 1.0)


# ------------------------------------------------------------------------------- versions


@section("versions", ["a CUDA device"])
def versions(check: Check) -> None:
    import numpy
    import pandas

    check.versions.update(
        python=platform.python_version(),
        torch=torch.__version__,
        torch_cuda_build=torch.version.cuda,
        numpy=numpy.__version__,
        pandas=pandas.__version__,
        biv_from=str(Path(biv.__file__).parent),
    )
    check.need_cuda()
    check.versions.update(
        gpu=torch.cuda.get_device_name(),
        capability=".".join(map(str, torch.cuda.get_device_capability())),
        cudnn=torch.backends.cudnn.version(),
        bf16_native=torch.cuda.is_bf16_supported(including_emulation=False),
    )
    check.holds("a CUDA device", True, check.versions["gpu"])


# ------------------------------------------------------------------------------- TF32


def _as_tf32(x: torch.Tensor) -> torch.Tensor:
    """``x`` (float32) rounded to TF32's 10 mantissa bits (half up), as TF32 reads its inputs."""
    return ((x.view(torch.int32) + 0x1000) & -0x2000).view(torch.float32)


@section(
    "tf32",
    [
        "matmul cpu float32 vs float64",
        "matmul: tolerance separates TF32",
        "conv cpu float32 vs float64",
        "conv: tolerance separates TF32",
        "matmul cuda float32 vs float64",
        "conv cuda float32 vs float64",
    ],
)
def tf32(check: Check) -> None:
    """A matrix product and a convolution in float32 against float64, under the flags every
    CUDA run sets (``biv.train.devices.determinism``)."""
    n = check.size(1024, 256)
    gen = torch.Generator().manual_seed(0)
    ops = {
        "matmul": (
            torch.matmul,
            (torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)),
        ),
        "conv": (
            lambda x, w: F.conv2d(x, w, padding=1),
            (torch.randn(8, 64, 32, 32, generator=gen), torch.randn(64, 64, 3, 3, generator=gen)),
        ),
    }
    refs = {}
    for name, (fn, args) in ops.items():
        refs[name] = fn(*(a.double() for a in args))
        check.within(
            f"{name} cpu float32 vs float64", relative_error(fn(*args), refs[name]), EXACT_RTOL
        )
        tf = fn(*(_as_tf32(a).double() for a in args))
        check.above(
            f"{name}: tolerance separates TF32",
            relative_error(tf, refs[name]),
            10 * EXACT_RTOL,
            "inputs rounded as TF32 rounds them",
        )
    check.need_cuda()
    flags = determinism(check.device)
    for name, (fn, args) in ops.items():
        got = fn(*(a.cuda() for a in args))
        check.within(
            f"{name} cuda float32 vs float64",
            relative_error(got, refs[name]),
            EXACT_RTOL,
            f"flags {flags}",
        )


# ------------------------------------------------------------------------------- one step

#: below every variance of ``gpu_check_inputs.batch``: the cutoff member's batch is empty
EMPTY_CUTOFF = {"type": "cutoff", "threshold": 0.05}
MSE, BIV = {"type": "mse"}, {"type": "biv", "epsilon": 0.1}
#: model, one sample's shape, the members' losses, batch rows
STEP_CASES = {
    "mlp": (inputs.MLP, (8,), [MSE, {"type": "iv", "epsilon": 0.1}, BIV, EMPTY_CUTOFF], 32),
    "cnn": ({"name": "cnn"}, (3, 64, 64), [MSE, BIV], 8),
    "resnet18": ({"name": "resnet18"}, (3, 32, 32), [MSE, BIV], 8),
}
TEST_ROWS = 16


def _pack_steps(model: dict, shape, losses, rows: int, device, dtype=torch.float32):
    """A pack of ``len(losses)`` members (seeds 0, 1, ...), its :class:`biv.train.step.Steps`
    on a test set of ``TEST_ROWS`` rows, and a training batch: (steps, x, y, var)."""
    members = len(losses)
    spec = ModelSpec.from_config("model", model)
    net = build_pack_model(spec, shape, list(range(members)), device, dtype)
    x, y, var = inputs.batch(shape, members, rows + TEST_ROWS)
    x = x.to(device) if x.dtype == torch.uint8 else x.to(device, dtype)
    y, var = y.to(device, dtype), var.to(device, dtype)
    data = inputs.StepData(y[0, rows:], images=len(shape) == 3)
    steps = Steps(
        net,
        PackAdam(net.stacked(), members, lr=1e-3),
        [LossSpec.from_config("loss", loss) for loss in losses],
        data,
        list(x[rows:].split(TEST_ROWS // 2)),
        eval_bf16=False,
        eval_protocol="standard",
        test_batch=TEST_ROWS // 2,
    )
    return steps, x[:rows], y[:, :rows], var[:, :rows]


def _one_step(case: str, device, dtype) -> dict:
    """The test error sums of the initial pack, then one training step: its losses, the
    gradients, the parameters before and after, the members' Adam step counts."""
    model, shape, losses, rows = STEP_CASES[case]
    steps, x, y, var = _pack_steps(model, shape, losses, rows, device, dtype)
    empty = np.array([loss is EMPTY_CUTOFF for loss in losses])
    sums = steps.evaluate()
    before = [p.detach().clone() for p in steps.model.stacked()]
    values = steps.train_step(Batch(x, y, var, empty, [None] * len(losses))).values
    return {
        "losses": values,
        "gradients": steps.model.gradients(),
        "sums": sums,
        "before": before,
        "after": [p.detach().clone() for p in steps.model.stacked()],
        "adam_steps": steps.optimizer.steps.clone(),
        "empty": empty,
    }


def _step_errors(got: dict, ref: dict) -> dict[str, float]:
    """Per quantity, the largest relative error over the members that trained."""
    errors = {"losses": 0.0, "gradients": 0.0, "test sums": 0.0}
    for m in np.flatnonzero(~ref["empty"]):
        grads = [torch.cat([g[m].flatten() for g in d["gradients"]]) for d in (got, ref)]
        pairs = {
            "losses": (got["losses"][m : m + 1], ref["losses"][m : m + 1]),
            "gradients": grads,
            "test sums": (got["sums"][m], ref["sums"][m]),
        }
        for name, (a, b) in pairs.items():
            errors[name] = max(errors[name], relative_error(a, b))
    return errors


def _empty_member_unchanged(run: dict) -> bool:
    """The members whose batch was empty: weights and Adam step count untouched, to the bit."""
    return all(
        torch.equal(b.view(len(run["empty"]), -1)[m], a.view(len(run["empty"]), -1)[m])
        and float(run["adam_steps"][m]) == 0
        for m in np.flatnonzero(run["empty"])
        for b, a in zip(run["before"], run["after"], strict=True)
    )


def _compare_step(check: Check, case: str, where: str, got: dict, ref: dict) -> None:
    errors = _step_errors(got, ref)
    note = ", ".join(f"{k} {v:.2g}" for k, v in errors.items())
    check.within(f"{case} {where} float32 vs float64", max(errors.values()), STEP_RTOL[case], note)


@section(
    "one step",
    [
        *(f"{case} cpu float32 vs float64" for case in STEP_CASES),
        "mlp empty cutoff member unchanged (cpu)",
        *(f"{case} cuda float32 vs float64" for case in STEP_CASES),
        "mlp empty cutoff member unchanged (cuda)",
    ],
)
def one_step(check: Check) -> None:
    """One training step of packs in float32 against the same step in float64 on the CPU: an
    MLP with BatchNorm (L2, IV, BIV, and a cutoff member whose batch is empty), the CNN and
    ResNet-18 (packs of 2, small images): losses, gradients, test error sums."""
    cpu = torch.device("cpu")
    refs = {case: _one_step(case, cpu, torch.float64) for case in STEP_CASES}
    for case, ref in refs.items():
        _compare_step(check, case, "cpu", _one_step(case, cpu, torch.float32), ref)
    check.holds("mlp empty cutoff member unchanged (cpu)", _empty_member_unchanged(refs["mlp"]))
    check.need_cuda()
    determinism(check.device)
    for case, ref in refs.items():
        got = _one_step(case, check.device, torch.float32)
        _compare_step(check, case, "cuda", got, ref)
        if case == "mlp":
            unchanged = _empty_member_unchanged(got)
            check.holds("mlp empty cutoff member unchanged (cuda)", unchanged)


# ------------------------------------------------------------------------------- host syncs

SYNC_LOSSES = [MSE, {"type": "iv", "epsilon": 0.1}, BIV, inputs.CUTOFF]
SYNC_LOSSES.append({"type": "biv_adaptive", "ratio": 0.5})


@section("host syncs", [f"no host sync: {loss['type']}" for loss in SYNC_LOSSES])
def host_syncs(check: Check) -> None:
    """The plain step of a pack (each loss beside a cutoff member whose batch is empty) and the
    evaluation, under ``torch.cuda.set_sync_debug_mode("error")``: no host synchronization."""
    packs = []
    for loss in SYNC_LOSSES:
        steps, x, y, var = _pack_steps(inputs.MLP, (8,), [loss, EMPTY_CUTOFF], 32, check.device)
        adaptive = loss["type"] == "biv_adaptive"  # its epsilon search reads host variances
        host = [var[0].double().cpu().numpy() if adaptive else None, None]
        steps.train_step(Batch(x, y, var, np.zeros(2, bool), host))  # lazy initialization may sync
        packs.append((loss["type"], steps, x, y, var, host))
    check.need_cuda()
    torch.cuda.synchronize()
    for name, steps, x, y, var, host in packs:
        try:
            torch.cuda.set_sync_debug_mode("error")
            steps.train_step(Batch(x, y, var, np.array([False, True]), host))
            steps.evaluate()
            found = "none"
        except RuntimeError as err:
            found = str(err).splitlines()[0]
        finally:
            torch.cuda.set_sync_debug_mode("default")
        check.holds(f"no host sync: {name}", found == "none", f"step and evaluation: {found}")


# ------------------------------------------------------------------------------- train_pack


def train(check: Check, name: str, runs: list[dict], dtype=torch.float32) -> list[Path]:
    """``train_pack`` of ``runs`` into ``check.work``/name; the members' run folders."""
    out = check.work / name
    folders = [out / f"member{i}" for i in range(len(runs))]
    train_pack(runs, folders, out, dtype=dtype)
    return folders


def read_json(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def metrics(folder: Path) -> dict[tuple[str, str, int], float]:
    """metrics.csv as (split, metric, step) -> value."""
    with open(folder / "metrics.csv", newline="") as f:
        return {
            (r["split"], r["metric"], int(r["step"])): float(r["value"]) for r in csv.DictReader(f)
        }


def drift(a: list[Path], b: list[Path], split: str, metric: str) -> tuple[float, bool]:
    """The largest relative difference of ``split``/``metric`` over the members' steps (inf if
    the two runs logged different steps, skipped ones included), and whether all are equal."""
    worst, equal = 0.0, True
    for fa, fb in zip(a, b, strict=True):
        ma, mb = metrics(fa), metrics(fb)
        if ma.keys() != mb.keys():
            return float("inf"), False
        for key in ma:
            if key[:2] == (split, metric):
                worst = max(worst, abs(ma[key] - mb[key]) / max(abs(mb[key]), 1e-30))
                equal &= ma[key] == mb[key]
    return worst, equal


def mlp_runs(check: Check, device: str, **training) -> list[dict]:
    """Four members (L2, IV, BIV, cutoff with skipped steps), an MLP, synthetic data."""
    data = inputs.features(check.work, check.size(1000, 200), check.size(300, 100))
    block = {"lr": 1e-3, "batch_size": 16, "epochs": 2, "eval_every": 1, "device": device}
    block["eval_batch_size"] = 128
    noise = inputs.noise_draws(check.work, data)
    return inputs.pack_runs(data, noise, inputs.MLP_NO_BN, block | training)


@section(
    "cuda graphs",
    [
        "plain run has skipped cutoff steps",
        "graphs used for the training step and the evaluation",
        "graphed vs plain: training losses",
        "graphed vs plain: test MSE",
    ],
)
def cuda_graphs(check: Check) -> None:
    """``train_pack`` with ``training.cuda_graphs: true`` against plain steps (two epochs, test
    MSE after every step, a short last batch, skipped cutoff steps)."""
    plain = train(check, "plain", mlp_runs(check, check.device.type, cuda_graphs=False))
    skipped = read_json(plain[3], "summary.json")["skipped_steps"]
    check.holds("plain run has skipped cutoff steps", skipped > 0, measured=skipped)
    check.need_cuda()
    check.measured["plain cuda run"] = [str(f) for f in plain]
    graphed = train(check, "graphed", mlp_runs(check, "cuda", cuda_graphs=True))
    record = read_json(graphed[0], "run.json")["run"]["cuda_graphs"]
    used = record["used"] and record["evaluation"]["used"]
    check.holds("graphs used for the training step and the evaluation", used, json.dumps(record))
    for name, split, metric in (("training losses", "train", "loss"), ("test MSE", "test", "mse")):
        worst, equal = drift(graphed, plain, split, metric)
        check.within(f"graphed vs plain: {name}", worst, DRIFT_RTOL, f"bitwise equal: {equal}")


#: the injected failures of section "graph failures", in a loss of member 0
FAILURES = ("warm-up", "capture")


def inject_failure(what: str, work: Path) -> int:
    """The child process of section "graph failures": member 0's loss raises in the second
    warm-up step, or syncs with the host while captured (which invalidates the capture); the
    pack trains with CUDA graphs into ``work``. Exit status 2 without a GPU."""
    check = Check(work=work, log=print)
    runs = mlp_runs(check, "cuda", cuda_graphs=True)
    if not torch.cuda.is_available():
        return 2
    import dataclasses

    from biv.losses import registered

    kind, calls = registered()[runs[0]["loss"]["type"]], []  # member 0's, its only member

    def failing(pred, target, var, *args):
        calls.append(1)
        if what == "warm-up" and len(calls) == 2:
            raise RuntimeError("injected failure in warm-up")
        if what == "capture" and torch.cuda.is_current_stream_capturing():
            var.sum().item()  # a host sync: not allowed while capturing
        return kind.compute(pred, target, var, *args)

    registered()[kind.name] = dataclasses.replace(kind, compute=failing)
    train(check, f"failure-{what}", runs)
    return 0


@section(
    "graph failures",
    [f"failure in {what}: {item}" for what in FAILURES for item in ("fallback", "= plain run")],
)
def graph_failures(check: Check) -> None:
    """A failure injected in the warm-up and one in the capture of the training step, each in
    its own process (a failed capture must not affect what runs after it): the run falls back
    to plain steps and ends as the plain run did."""
    children = {}
    for what in FAILURES:
        cmd = [sys.executable, str(Path(__file__).parent / "gpu_check.py")]
        cmd += ["--inject", what, "--work", str(check.work)]
        children[what] = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if children[what].returncode not in (0, 2):
            raise RuntimeError(f"{what}: {children[what].stderr[-2000:]}")
    if any(proc.returncode == 2 for proc in children.values()):
        check.need_cuda()
    plain = [Path(f) for f in check.measured.get("plain cuda run", [])]
    if not plain:
        plain = train(check, "plain", mlp_runs(check, "cuda", cuda_graphs=False))
    for what in FAILURES:
        folders = [check.work / f"failure-{what}" / p.name for p in plain]
        record = read_json(folders[0], "run.json")["run"]["cuda_graphs"]
        fallback = str(record["fallback"])
        ok = not record["used"] and "capture failed: " in fallback
        if what == "warm-up":
            ok &= "injected failure in warm-up" in fallback
        check.holds(f"failure in {what}: fallback", ok, fallback)
        worst, equal = drift(folders, plain, "test", "mse")
        losses, losses_equal = drift(folders, plain, "train", "loss")
        note = f"training losses bitwise equal: {losses_equal}; test MSE bitwise equal: {equal}"
        check.within(f"failure in {what}: = plain run", max(worst, losses), DRIFT_RTOL, note)


# ------------------------------------------------------------------------------- CUDA vs CPU


def mse_from_predictions(folder: Path) -> float:
    """The test MSE recomputed from predictions.csv (raw units)."""
    with open(folder / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return sum((float(r["y_pred"]) - float(r["y_true"])) ** 2 for r in rows) / len(rows)


def check_predictions(check: Check, name: str, folders: list[Path]) -> None:
    """predictions.csv recomputes summary.json's final test MSE: float32 errors summed in
    float64 against the written float64 predictions, ~1e-7 apart."""
    worst = max(
        abs(mse_from_predictions(f) / read_json(f, "summary.json")["final_test_mse_raw"] - 1)
        for f in folders
    )
    check.within(name, worst, 1e-5)


def image_runs(check: Check, device: str, **training) -> list[dict]:
    """A pack of 2 CNNs (L2, BIV) on small synthetic images, test MSE every 4 steps."""
    data = inputs.images(check.work, 64, 64, 64)
    block = {"lr": 1e-3, "batch_size": 16, "epochs": 2, "eval_every": 4, "device": device}
    losses = [inputs.LOSSES[0], inputs.LOSSES[2]]
    noise = inputs.noise_draws(check.work, data)
    return inputs.pack_runs(data, noise, {"name": "cnn"}, block | training, losses=losses)


@section(
    "cuda vs cpu",
    [
        "cpu float32 vs float64: test MSE",
        "cpu: predictions.csv recomputes summary.json",
        "cuda vs cpu: test MSE",
        "cuda: predictions.csv recomputes summary.json",
        "cuda: pack member vs its solo run",
        "bf16 evaluation used",
        "bf16 evaluation within its bound of float32",
    ],
)
def cuda_vs_cpu(check: Check) -> None:
    """``train_pack`` of the MLP pack on CUDA against the CPU (test MSE every 10 steps), the
    CPU's float32 against float64 (the drift round-off causes: the yardstick of DRIFT_RTOL), a
    member against its solo run on CUDA; bf16 evaluation of a CNN pack."""
    runs = {"epochs": check.size(3, 2), "eval_every": 10}
    cpu = train(check, "cpu", mlp_runs(check, "cpu", **runs))
    cpu64 = train(check, "cpu64", mlp_runs(check, "cpu", **runs), dtype=torch.float64)
    worst, _ = drift(cpu, cpu64, "test", "mse")
    check.within("cpu float32 vs float64: test MSE", worst, DRIFT_RTOL)
    check_predictions(check, "cpu: predictions.csv recomputes summary.json", cpu)
    train(check, "bf16-cpu", image_runs(check, "cpu", eval_bf16=True))  # not used on the CPU
    check.need_cuda()
    gpu = train(check, "cuda", mlp_runs(check, "cuda", **runs))
    worst, _ = drift(gpu, cpu, "test", "mse")
    check.within("cuda vs cpu: test MSE", worst, DRIFT_RTOL)
    check_predictions(check, "cuda: predictions.csv recomputes summary.json", gpu)
    solo = train(check, "cuda-solo", mlp_runs(check, "cuda", **runs)[:1])  # cuBLAS: other kernels
    worst, equal = drift(solo, gpu[:1], "test", "mse")
    check.within("cuda: pack member vs its solo run", worst, DRIFT_RTOL, f"bitwise equal: {equal}")
    bf16 = [
        read_json(f, "run.json")["run"]["eval_bf16"]
        for f in train(check, "bf16-cuda", image_runs(check, "cuda", eval_bf16=True))
    ]
    check.holds("bf16 evaluation used", all(r["used"] for r in bf16), json.dumps(bf16[0]))
    worst = max(r.get("final_test_mse_rel_diff_vs_float32", float("nan")) for r in bf16)
    check.within("bf16 evaluation within its bound of float32", worst, BF16_MSE_RTOL)


# ------------------------------------------------------------------------------- full size


def _image_steps(model: str, seeds: list[int], side: int, rows: int, n_steps: int, device):
    """``n_steps`` L2 steps of a pack of ``model`` (one member per seed) on one batch of
    ``rows`` random images ``side`` x ``side``: per-run steps/s, the first member's weights
    afterwards, the peak GPU memory (bytes; None on the CPU)."""
    members = len(seeds)
    spec = ModelSpec.from_config("model", {"name": model})
    net = build_pack_model(spec, (3, side, side), seeds, device)
    x, y, _ = inputs.batch((3, side, side), members, rows)
    x, y = x.to(device), y.to(device, torch.float32)
    steps = Steps(
        net,
        PackAdam(net.stacked(), members, lr=1e-3),
        [LossSpec.from_config("loss", MSE)] * members,
        inputs.StepData(y[0], images=True),
        [x],
        eval_bf16=False,
        eval_protocol="standard",
        test_batch=rows,
    )
    no_skips, host = np.zeros(members, bool), [None] * members
    steps.train_step(Batch(x, y, y, no_skips, host))  # cuDNN and allocator warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(n_steps - 1):
        steps.train_step(Batch(x, y, y, no_skips, host))
    weights = torch.cat([p.detach()[0].flatten() for p in net.stacked()]).cpu()
    rate = (n_steps - 1) * members / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return rate, weights, peak


@section(
    "full size",
    [
        *(
            f"{m} {item}"
            for m in ("cnn", "resnet18")
            for item in ("solo run twice bitwise", "pack member = solo run")
        ),
        "cnn steps/s",
        "resnet18 steps/s",
        "resnet18 pack of 2: peak GPU memory",
    ],
)
def full_size(check: Check) -> None:
    """UTKFace's image size and batch (200x200, 256; reduced on the CPU): the CNN and ResNet-18
    run twice from one seed (bitwise equal), a pack of 2 (its seed-0 member equal to the solo
    run), per-run steps/s, and the peak memory of a ResNet-18 pack of 2."""
    side, rows, n_steps = check.size((200, 256, 20), (64, 4, 3))
    determinism(check.device)
    found = {}
    for model in ("cnn", "resnet18"):
        runs = {
            label: _image_steps(model, seeds, side, rows, n_steps, check.device)
            for label, seeds in (("solo", [0]), ("again", [0]), ("pack", [0, 1]))
        }
        where = f"{check.device.type}, {side}x{side}, batch {rows}, {n_steps} steps"
        same = torch.equal(runs["solo"][1], runs["again"][1])
        check.holds(f"{model} solo run twice bitwise", same, where)
        same = torch.equal(runs["pack"][1], runs["solo"][1])
        check.holds(f"{model} pack member = solo run", same, where)
        found[model] = runs
    check.need_cuda()
    for model, runs in found.items():
        rates = f"solo {runs['solo'][0]:.1f}, in a pack of 2 {runs['pack'][0]:.1f} per run"
        check.info(f"{model} steps/s", runs["solo"][0], rates)
    peak = found["resnet18"]["pack"][2] / 2**30
    check.info("resnet18 pack of 2: peak GPU memory", peak, "GiB")


# ------------------------------------------------------------------------------- paper


def paper_plan():
    import yaml

    from biv.config import build_plan

    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    cwd = Path.cwd()
    os.chdir(ROOT)  # the config names its files relative to the repository's root
    try:
        return build_plan(config)
    finally:
        os.chdir(cwd)


def bike_pack_step_s(check: Check, plan, cuda_graphs: bool) -> float:
    """Per-run seconds of a step of a Bike pack as config/paper.yaml trains it (its pack size,
    its training block: a test evaluation after every step), on data of Bike's shape."""
    exp = plan.experiments["bike"]
    dataset = plan.datasets[exp.dataset]
    n_train, n_test = check.size((dataset.n_train, dataset.n_test), (512, 256))
    data = inputs.features(check.work, n_train, n_test, n_features=19)
    block = exp.training.to_dict() | {"epochs": check.size(4, 1), "checkpoint_every": 0}
    block |= {"device": check.device.type, "cuda_graphs": cuda_graphs}
    seeds = range(1, exp.training.pack_size + 1)
    losses = [("biv", exp.losses["biv"].to_dict())]
    runs = inputs.pack_runs(
        data, inputs.noise_draws(check.work, data), exp.model.to_dict(), block, losses, seeds
    )
    summary = read_json(train(check, f"bike-graphs-{cuda_graphs}", runs)[0], "summary.json")
    return summary["wall_time_s"] / summary["steps"] / len(seeds)


def utkf_step_s(check: Check, plan) -> tuple[float, float]:
    """Per-run seconds of a training step and of a test evaluation of a UTKFace CNN pack as
    config/paper.yaml trains it (its pack size, batch, test set and evaluation batches)."""
    exp = plan.experiments["utkf"]
    side, rows = check.size((200, exp.training.batch_size), (64, 4))
    n_test = check.size(plan.datasets[exp.dataset].n_test, 16)
    members, n_steps = exp.training.pack_size, check.size(5, 2)
    steps, x, y, var = _pack_steps(
        exp.model.to_dict(), (3, side, side), [MSE] * members, rows, check.device
    )
    gen = torch.Generator().manual_seed(0)
    test = torch.randint(0, 256, (n_test, 3, side, side), generator=gen, dtype=torch.uint8)
    steps.chunks = list(test.to(check.device).split(exp.training.eval_batch_size))
    steps.data.y_test = torch.zeros(n_test, device=check.device)
    steps.eval_protocol = exp.training.eval_protocol
    no_skips, host = np.zeros(members, bool), [None] * members
    steps.train_step(Batch(x, y, var, no_skips, host))  # warm-up
    steps.evaluate()
    timed = []
    for work in (lambda: steps.train_step(Batch(x, y, var, no_skips, host)), steps.evaluate):
        _sync(check)
        start = time.perf_counter()
        for _ in range(n_steps):
            work()
        _sync(check)
        timed.append((time.perf_counter() - start) / n_steps / members)
    return timed[0], timed[1]


def _sync(check: Check) -> None:
    if check.cuda:
        torch.cuda.synchronize()


def gpu_hours(plan, bike_step_s: float, utkf_step_s: float, utkf_eval_s: float) -> dict:
    """GPU-hours of every run of ``plan`` by experiment: MLP runs at the Bike pack's per-run
    step time (its evaluation included), CNN runs at UTKFace's step and evaluation times."""
    hours: dict[str, float] = {}
    for run in plan.runs:
        exp = plan.experiments[run.experiment]
        tr = exp.training
        steps = tr.steps_per_epoch(plan.datasets[exp.dataset].n_train) * tr.epochs
        if exp.model.name == "mlp":
            seconds = steps * bike_step_s
        else:
            seconds = steps * utkf_step_s + -(-steps // tr.eval_every) * utkf_eval_s
        hours[run.experiment] = hours.get(run.experiment, 0.0) + seconds / 3600
    return hours


@section(
    "paper estimate",
    [
        "bike pack: per-run step with its evaluation",
        "bike pack with cuda_graphs: per-run step",
        "utkf cnn pack: per-run step, evaluation",
        "config/paper.yaml GPU-hours",
    ],
)
def paper_estimate(check: Check) -> None:
    """Per-run step times of a Bike pack and a UTKFace pack as config/paper.yaml trains them,
    and from them the GPU-hours of all its runs."""
    plan = paper_plan()
    bike = bike_pack_step_s(check, plan, cuda_graphs=False)
    utkf = utkf_step_s(check, plan)
    hours = gpu_hours(plan, bike, *utkf)
    check.need_cuda()
    check.measured["bike_run_step_s"], check.measured["utkf_run_step_s"] = bike, utkf[0]
    check.measured["utkf_run_eval_s"] = utkf[1]
    check.info("bike pack: per-run step with its evaluation", bike * 1e3, "ms")
    graphs = bike_pack_step_s(check, plan, cuda_graphs=True)
    check.info("bike pack with cuda_graphs: per-run step", graphs * 1e3, "ms")
    check.info("utkf cnn pack: per-run step, evaluation", utkf[0] * 1e3, f"ms; {utkf[1]:.3f} s")
    total = {name: round(h, 2) for name, h in hours.items()}
    check.measured["paper_gpu_hours"] = total
    check.info("config/paper.yaml GPU-hours", round(sum(hours.values()), 1), json.dumps(total))


# ------------------------------------------------------------------------------- tests

CUDA_TESTS = ["tests/test_step.py", "tests/test_evaluation.py", "tests/test_devices.py"]


@section("cuda tests", ["test files pass", "no CUDA test skipped"])
def cuda_tests(check: Check) -> None:
    """The test files of the CUDA code, with pytest: on a GPU none may skip."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *CUDA_TESTS]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    check.log(proc.stdout[-3000:] + proc.stderr[-2000:])
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "no output"
    check.holds("test files pass", proc.returncode == 0, last)
    check.need_cuda()
    check.holds("no CUDA test skipped", "skipped" not in last, last)
