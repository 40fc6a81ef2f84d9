"""One command for the GPU paths (issue #20): what a session with a GPU runs first, in < 8 min.

    BIV_DATA_DIR=/path/to/data bash bench/gpu_check.sh   # = python bench/gpu_check.py

Each section prints its findings, PASS/FAIL/INFO lines and its wall time; the exit status is 1
if any FAILs, 2 without a CUDA device.

1. versions: torch, CUDA, cuDNN, the GPU; native bf16; the TF32 flags before and after
   ``biv.devices.exact_float32`` (the default of every CUDA run).
2. the CUDA tests: ``pytest tests/test_cuda_step.py tests/test_evaluation.py``.
3. host syncs: for every loss, the plain step of a pack of that loss and a cutoff member whose
   batch is empty, and the evaluation, under ``torch.cuda.set_sync_debug_mode("error")``
   (biv_adaptive with its host copy of σ²).
4. CUDA graphs: graphed against plain steps (the same :class:`biv.optim.PackAdam`) of the
   tests' pack of a cutoff and an L2 member, with a short last batch and empty cutoff batches; a
   failure injected in one member's loss function in warm-up and one in capture (a host sync
   while capturing): the run falls back, on the caller's stream.
5. the demo (config/config.yaml) on the CPU, on CUDA solo (every experiment's
   ``training.pack_size: 1``) and on CUDA stacked (the config's default packs): final test MSE
   of every run against the CPU, and the pack sizes the runs trained in.
6. a 20-run Bike pack (``bench/bench_pack.py``'s members, 10 epochs, needs ``BIV_DATA_DIR``) on
   CUDA and on the CPU: per-run time and per-run step time, final test MSE of each member.
7. full-size UTKFace models (200x200, batch 256): 200 steps of the CNN and ResNet-18 solo,
   twice from the same seed (bitwise equal?), and as a pack of 2 (``ModulePack``; its seed-0
   member against the solo run, bitwise): per-run steps/s, whether image packs pay.
8. an estimate of the GPU-hours of config/paper.yaml from the measured step times (Bike: the
   per-run step time of the 20-run pack).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
DEVICE = torch.device("cuda")
FAILED: list[str] = []
#: step times measured by the sections, for the paper estimate
MEASURED: dict[str, float] = {}


def verdict(section: str, ok: bool | None, text: str) -> None:
    word = "INFO" if ok is None else "PASS" if ok else "FAIL"
    if ok is False:
        FAILED.append(section)
    print(f"[{word}] {section}: {text}", flush=True)


def versions() -> None:
    from biv.devices import exact_float32

    print(
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version()}, {torch.cuda.get_device_name()} "
        f"(capability {torch.cuda.get_device_capability()})"
    )
    print(
        f"bf16: native {torch.cuda.is_bf16_supported(including_emulation=False)}, "
        f"with emulation {torch.cuda.is_bf16_supported()}"
    )
    before = exact_float32(torch.device("cpu"))  # reads the flags, changes nothing
    after = exact_float32(DEVICE)
    print(f"TF32 flags: PyTorch's defaults {before}; a biv run on CUDA {after}")
    verdict("versions", not any(after.values()), "TF32 off for matmul and cuDNN convolutions")


def cuda_tests() -> None:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "tests/test_cuda_step.py",
        "tests/test_evaluation.py",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(proc.stdout[-3000:])
    verdict(
        "cuda tests",
        proc.returncode == 0 and "skipped" not in proc.stdout.splitlines()[-1],
        proc.stdout.splitlines()[-1] if proc.stdout else proc.stderr[-500:],
    )


def _mlp_pack(loss_specs: list[dict], steps_class, n: int = 22):
    """Steps of a pack of BatchNorm MLPs, one member per loss (seeds 0, 1, ...), and training
    data: inputs (n, 3), labels and variances (P, n) on the device, variances on the host."""
    from test_cuda_step import MLP_BN, Data

    from biv.losses import make_loss
    from biv.optim import PackAdam
    from biv.pack_model import build_pack_model

    members = len(loss_specs)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, generator=gen), torch.randn(n, generator=gen)
    var = torch.rand(n, generator=gen) * 2
    x_test, y_test = torch.randn(10, 3, generator=gen), torch.randn(10, generator=gen)
    model = build_pack_model(MLP_BN, (3,), list(range(members)), DEVICE)
    optimizer = PackAdam(model.stacked(), members, lr=0.05)
    steps = steps_class(
        model,
        optimizer,
        [make_loss(spec) for spec in loss_specs],
        Data(y_test.to(DEVICE)),
        [x_test.to(DEVICE)],
        eval_bf16=False,
    )
    y, var_device = (t.to(DEVICE).expand(members, -1) for t in (y, var))
    return steps, x.to(DEVICE), y, var_device, var.double().numpy()


def host_syncs() -> None:
    from biv.cuda_step import Steps
    from biv.losses import trusted_variances

    specs = [
        {"type": "mse"},
        {"type": "iv", "epsilon": 0.1},
        {"type": "biv", "epsilon": 0.1},
        {"type": "cutoff", "threshold": 1.0},
        {"type": "biv_adaptive", "ratio": 0.5},
    ]
    for spec in specs:
        steps, x, y, var, var_host = _mlp_pack([spec, {"type": "cutoff", "threshold": 1.0}], Steps)
        adaptive = spec["type"] == "biv_adaptive"

        def host(rows: slice, adaptive=adaptive, var_host=var_host):
            return [var_host[rows] if adaptive else None, None]

        steps.train_step(x[:4], y[:, :4], var[:, :4], np.zeros(2, bool), host(slice(0, 4)))
        torch.cuda.synchronize()  # the first step may sync (lazy initialisation)
        try:
            torch.cuda.set_sync_debug_mode("error")
            with trusted_variances():  # the cutoff member's batch is empty: the masked update
                rows = slice(4, 8)
                empty = np.array([False, True])
                steps.train_step(x[rows], y[:, rows], var[:, rows], empty, host(rows))
                steps.evaluate()
            found = "none"
        except RuntimeError as err:
            found = str(err).splitlines()[0]
        finally:
            torch.cuda.set_sync_debug_mode("default")
        verdict(
            f"host syncs {spec['type']}",
            found == "none",
            f"step (cutoff packmate skipped) and evaluation: {found}",
        )


def graphs() -> None:
    from test_cuda_step import GraphedSteps, Steps, run

    from biv import cuda_step

    handler = logging.handlers.BufferingHandler(capacity=100)
    logging.getLogger("biv.cuda_step").addHandler(handler)
    try:
        graphed = run(GraphedSteps, device=DEVICE.type)
    finally:
        logging.getLogger("biv.cuda_step").removeHandler(handler)
    warnings = [record.getMessage() for record in handler.buffer]
    verdict("graphs: every capture used", not warnings, "; ".join(warnings) or "no fallback")
    plain = run(Steps, device=DEVICE.type)
    same_skips = [e for _, e in graphed[0]] == [e for _, e in plain[0]]
    pairs = [(a, b) for (a, _), (b, _) in zip(graphed[0], plain[0], strict=True)]
    pairs += list(zip(graphed[1] + graphed[2], plain[1] + plain[2], strict=True))
    diff = max(float((a.double() - b.double()).abs().max()) for a, b in pairs)
    verdict(
        "graphs vs plain",
        same_skips and diff < 1e-4,
        f"same skipped steps {same_skips}; max difference of losses, test sums and state "
        f"{diff:.3g} (bitwise equal: {diff == 0})",
    )

    for what in ("warm-up", "capture"):
        steps, x, y, var, _ = _mlp_pack(
            [{"type": "mse"}, {"type": "cutoff", "threshold": 1.0}], GraphedSteps
        )
        real, calls = steps.loss_fns[0], []

        def failing(pred, target, v, *host, real=real, calls=calls, what=what):
            calls.append(1)
            if what == "warm-up" and len(calls) == 2:
                raise RuntimeError("injected warm-up failure")
            if what == "capture" and torch.cuda.is_current_stream_capturing():
                v.sum().item()  # a host sync: not allowed while capturing
            return real(pred, target, v, *host)

        steps.loss_fns[0] = failing
        main = torch.cuda.current_stream()
        no_skips, host = np.zeros(2, bool), [None, None]
        steps.train_step(x[:4], y[:, :4], var[:, :4], no_skips, host)
        steps.train_step(x[4:8], y[:, 4:8], var[:, 4:8], no_skips, host)  # the plain step
        torch.cuda.synchronize()
        ok = steps.failed and torch.cuda.current_stream() == main
        verdict(f"graphs: failure in {what}", ok, str(steps.record()["fallback"]))
    print(f"(warm-up steps per capture: {cuda_step.WARMUP_STEPS})")


def _demo(device: str, pack_size: int | None) -> tuple[float, dict, list[int]]:
    """The demo with every experiment on ``device`` and ``pack_size`` (None: the config's):
    wall time, final test MSE by (experiment, loss, seed), the pack sizes the runs trained in."""
    import json

    import pandas as pd
    import yaml
    from conftest import copy_workflow

    work = copy_workflow(Path(tempfile.mkdtemp(prefix=f"gpu-check-{device}-")))
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for exp in config["experiments"].values():
        training = {**exp["training"], "device": device}
        if pack_size is not None:
            training["pack_size"] = pack_size
        exp["training"] = training
    (work / "gpu.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "results/tables/runs.csv",  # before the options: --resources takes every word after it
        "--cores",
        "8",
        "--configfile",
        "gpu.yaml",
        "--resources",
        "gpu=1",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"snakemake failed in {work}: {proc.stderr[-1500:]}")
    runs = pd.read_csv(work / "results/tables/runs.csv")
    mse = runs.set_index(["experiment", "loss", "seed"])["final_test_mse"].to_dict()
    sizes = [json.loads(p.read_text())["pack_size"] for p in work.rglob("summary.json")]
    return wall, mse, sizes


def demo() -> None:
    results = {
        "cpu": _demo("cpu", None),
        "cuda solo": _demo(DEVICE.type, 1),
        "cuda stacked": _demo(DEVICE.type, None),
    }
    for label, (wall, mse, sizes) in results.items():
        print(f"demo {label}: {wall:.1f} s, {len(mse)} runs, pack sizes {sorted(set(sizes))}")
    verdict(
        "demo solo",
        set(results["cuda solo"][2]) == {1},
        f"pack sizes {sorted(set(results['cuda solo'][2]))} (pack_size: 1 everywhere)",
    )
    cpu = results["cpu"][1]
    for label in ("cuda solo", "cuda stacked"):
        mse = results[label][1]
        rel = max(abs(mse[key] - cpu[key]) / cpu[key] for key in cpu)
        verdict(
            f"demo {label} vs cpu",
            mse.keys() == cpu.keys(),
            f"largest relative difference of a final test MSE {rel:.2e}"
            " (60 epochs of float32 round-off apart)",
        )
    solo, stacked = results["cuda solo"][1], results["cuda stacked"][1]
    rel = max(abs(stacked[key] - solo[key]) / solo[key] for key in solo)
    verdict(
        "demo cuda stacked vs solo",
        None,
        f"largest relative difference of a final test MSE {rel:.2e} (bitwise equal: {rel == 0})",
    )


def bike_pack(size: int = 20, epochs: int = 10) -> None:
    from bench_pack import members
    from bench_train import prepare_bike

    from biv.train import train_pack

    if "BIV_DATA_DIR" not in os.environ:
        verdict("bike pack", False, "not run: set BIV_DATA_DIR (the folder with bike-sharing/)")
        return
    work = Path(tempfile.mkdtemp(prefix="gpu-check-bike-"))
    data, _ = prepare_bike(work)
    finals = {}
    for device in ("cpu", DEVICE.type):
        runs = members(work, data, size, epochs)
        for run in runs:
            run["training"]["device"] = device
        out = work / device
        summaries = train_pack(runs, [out / f"m{i}" for i in range(size)], out)
        wall, steps = summaries[0]["wall_time_s"], summaries[0]["steps"]
        step_s = wall / size / steps
        print(
            f"bike pack of {size} on {device}: {wall:.1f} s for {steps} steps (each with its "
            f"test evaluation): {wall / size:.2f} s per run, {1000 * step_s:.3f} ms per run-step"
        )
        finals[device] = [s["final_test_mse"] for s in summaries]
        if device == DEVICE.type:
            MEASURED["bike_run_step_s"] = step_s
    rel = max(abs(g - c) / c for c, g in zip(finals["cpu"], finals[DEVICE.type], strict=True))
    verdict(
        "bike pack cuda vs cpu",
        None,
        f"largest relative difference of a member's final test MSE {rel:.2e}",
    )


def utkf_models(steps: int = 200, batch: int = 256, side: int = 200, n_test: int = 4096) -> None:
    from test_cuda_step import Data

    from biv.cuda_step import Steps
    from biv.losses import make_loss
    from biv.optim import PackAdam
    from biv.pack_model import build_pack_model
    from biv.spec import ModelSpec

    torch.backends.cudnn.deterministic = True  # as biv.train sets them on CUDA
    torch.backends.cudnn.benchmark = False
    for name in ("cnn", "resnet18"):
        spec = ModelSpec.from_config("m", {"name": name})
        finals, rates = {}, {}
        for label, seeds in (("solo", [0]), ("solo again", [0]), ("pack of 2", [0, 1])):
            members = len(seeds)
            model = build_pack_model(spec, (3, side, side), seeds, DEVICE)
            gen = torch.Generator(device=DEVICE).manual_seed(0)
            x = torch.rand(batch, 3, side, side, device=DEVICE, generator=gen)
            y = torch.rand(batch, device=DEVICE, generator=gen).expand(members, -1)
            x_test = torch.rand(n_test, 3, side, side, device=DEVICE, generator=gen)
            y_test = torch.rand(n_test, device=DEVICE, generator=gen)
            run_steps = Steps(
                model,
                PackAdam(model.stacked(), members, lr=1e-3),
                [make_loss({"type": "mse"})] * members,
                Data(y_test),
                list(x_test.split(1024)),
                eval_bf16=False,
            )
            no_skips, host = np.zeros(members, bool), [None] * members
            run_steps.train_step(x, y, y, no_skips, host)  # cuDNN and allocator warm-up
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps - 1):
                run_steps.train_step(x, y, y, no_skips, host)
            torch.cuda.synchronize()
            rates[label] = (steps - 1) * members / (time.perf_counter() - start)
            start = time.perf_counter()
            run_steps.evaluate()  # one evaluation of the test images, in chunks of 1024
            torch.cuda.synchronize()
            eval_s = (time.perf_counter() - start) / members
            finals[label] = [
                torch.cat([p.detach()[m].flatten() for p in model.stacked()]).cpu()
                for m in range(members)
            ]
            print(
                f"{name} {label}: {rates[label]:.1f} steps/s per run, "
                f"{eval_s:.2f} s per run for a {n_test}-image evaluation"
            )
            if label == "solo":
                MEASURED[f"{name}_step_s"], MEASURED[f"{name}_eval_s"] = 1 / rates[label], eval_s
            del model, run_steps, x, x_test
        verdict(
            f"{name} {side}x{side} bitwise repeatable",
            torch.equal(finals["solo"][0], finals["solo again"][0]),
            f"{steps} steps twice from seed 0",
        )
        verdict(
            f"{name} pack of 2 member = solo run",
            torch.equal(finals["pack of 2"][0], finals["solo"][0]),
            "seed 0's weights after the steps, bitwise",
        )
        verdict(
            f"{name} pack of 2 pays",
            None,
            f"per-run steps/s {rates['pack of 2']:.1f} in the pack vs {rates['solo']:.1f} solo",
        )


def paper_estimate() -> None:
    import yaml

    from biv.spec import build_plan

    needed = ["bike_run_step_s", "cnn_step_s", "cnn_eval_s", "resnet18_step_s", "resnet18_eval_s"]
    missing = [key for key in needed if key not in MEASURED]
    if missing:
        verdict("paper.yaml GPU-hours", False, f"not measured (a section failed): {missing}")
        return
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    with contextlib.chdir(ROOT):  # the config names its reference file relative to the root
        plan = build_plan(config, check_files=False)
    hours = {}
    for run in plan.runs:
        exp = plan.experiments[run.experiment]
        n = plan.datasets[exp.dataset].n_train
        steps = exp.training.steps_per_epoch(n) * exp.training.epochs
        if exp.model.name == "mlp":  # Bike: a step with its test evaluation, in a 20-run pack
            seconds = steps * MEASURED["bike_run_step_s"]
        else:
            model = "cnn" if exp.model.name == "cnn" else "resnet18"
            evaluations = -(-steps // exp.training.eval_every)
            seconds = steps * MEASURED[f"{model}_step_s"]
            seconds += evaluations * MEASURED[f"{model}_eval_s"]
        hours[exp.model.name] = hours.get(exp.model.name, 0.0) + seconds / 3600
    verdict(
        "paper.yaml GPU-hours",
        None,
        f"{ {k: round(v, 2) for k, v in hours.items()} } (images: measured solo steps and "
        "4,096-image evaluations; Bike: the measured per-run step time of the 20-run pack)",
    )


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 2
    start = time.perf_counter()
    sections = [
        versions,
        cuda_tests,
        host_syncs,
        graphs,
        demo,
        bike_pack,
        utkf_models,
        paper_estimate,
    ]
    for section in sections:
        print(f"\n== {section.__name__}", flush=True)
        section_start = time.perf_counter()
        try:
            section()
        except Exception as err:  # a check that crashes is a finding, and the others still run
            verdict(section.__name__, False, f"crashed: {err!r}")
        print(f"({section.__name__}: {time.perf_counter() - section_start:.0f} s)", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s; failed: {FAILED or 'none'}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
