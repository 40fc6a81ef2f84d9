"""One command for the GPU paths (issue #20): what a session with a GPU runs first, in < 8 min.

    bash bench/gpu_check.sh            # = python bench/gpu_check.py, from the repository root

Each section prints its findings and a PASS/FAIL/INFO line; the exit status is 1 if any FAILs.

1. versions: torch, CUDA, cuDNN, the GPU; native bf16; the TF32 flags before and after
   ``biv.devices.exact_float32`` (the default of every CUDA run).
2. the CUDA tests: ``pytest tests/test_cuda_step.py tests/test_evaluation.py``.
3. host syncs: every loss's plain step and the evaluation under
   ``torch.cuda.set_sync_debug_mode("error")`` (biv_adaptive with its host copy of σ²).
4. CUDA graphs: graphed, plain (capturable Adam) and plain ``capturable=False`` steps of a cutoff
   run with a short last batch and an empty batch; a failure injected in warm-up and one in
   capture (a host sync while capturing): the run falls back, on the caller's stream.
5. the demo (config/config.yaml) on CUDA against the CPU: final test MSE of every run.
6. full-size UTKFace models (200x200, batch 256): a few hundred steps of the CNN and ResNet-18,
   twice from the same seed (bitwise equal?), steps/s.
7. an estimate of the GPU-hours of config/paper.yaml from the measured step times.

Stacked training (packs of runs in one process) does not exist yet: its checks are listed as
not run.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
FAILED: list[str] = []


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
    after = exact_float32(torch.device("cuda"))
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


def _mlp_steps(loss_spec: dict, steps_class, capturable: bool, n: int = 22, batch: int = 4):
    from test_cuda_step import Data

    from biv.losses import make_loss
    from biv.models import MLP
    from biv.optim import Adam

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, generator=gen), torch.randn(n, generator=gen)
    var = torch.rand(n, generator=gen) * 2
    torch.manual_seed(0)
    model = MLP(3, (8, 4), batchnorm=True).cuda()
    optimizer = Adam(model.parameters(), lr=0.05, capturable=capturable)
    x_test, y_test = torch.randn(10, 3).cuda(), torch.randn(10).cuda()
    steps = steps_class(
        model, optimizer, make_loss(loss_spec), Data(y_test), [x_test], eval_bf16=False
    )
    return steps, x.cuda(), y.cuda(), var.cuda(), var.double().numpy()


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
        steps, x, y, var, var_host = _mlp_steps(spec, Steps, capturable=False)
        host = var_host[:4] if spec["type"] == "biv_adaptive" else None
        steps.train_step(x[:4], y[:4], var[:4], False, host)  # warm: lazy init may sync
        torch.cuda.synchronize()
        try:
            torch.cuda.set_sync_debug_mode("error")
            with trusted_variances():
                steps.train_step(
                    x[4:8], y[4:8], var[4:8], False, None if host is None else var_host[4:8]
                )
                steps.evaluate()
            found = "none"
        except RuntimeError as err:
            found = str(err).splitlines()[0]
        finally:
            torch.cuda.set_sync_debug_mode("default")
        verdict(f"host syncs {spec['type']}", found == "none", f"step and evaluation: {found}")


def graphs() -> None:
    from test_cuda_step import GraphedSteps, Steps, run

    from biv import cuda_step

    graphed = run(GraphedSteps, device="cuda")
    for name, plain in (
        ("capturable", run(Steps, device="cuda")),
        ("capturable=False", run(Steps, device="cuda", capturable=False)),
    ):
        diff = max(float((a - b).abs().max()) for a, b in zip(graphed[2], plain[2], strict=True))
        verdict(f"graphs vs plain ({name})", diff < 1e-4, f"max parameter difference {diff:.3g}")

    for what in ("warm-up", "capture"):
        steps, x, y, var, _ = _mlp_steps({"type": "mse"}, GraphedSteps, capturable=True)
        real, calls = steps.loss_fn, []

        def failing(pred, target, v, real=real, calls=calls, what=what):
            calls.append(1)
            if what == "warm-up" and len(calls) == 2:
                raise RuntimeError("injected warm-up failure")
            if what == "capture" and torch.cuda.is_current_stream_capturing():
                v.sum().item()  # a host sync: not allowed while capturing
            return real(pred, target, v)

        steps.loss_fn = failing
        main = torch.cuda.current_stream()
        steps.train_step(x[:4], y[:4], var[:4], False)
        steps.train_step(x[4:8], y[4:8], var[4:8], False)  # the plain step goes on
        torch.cuda.synchronize()
        ok = steps.failed and torch.cuda.current_stream() == main
        verdict(f"graphs: failure in {what}", ok, str(steps.record()["fallback"]))
    print(f"(warm-up steps per capture: {cuda_step.WARMUP_STEPS})")


def demo_on_cuda() -> None:
    import pandas as pd
    import yaml
    from conftest import copy_workflow

    results = {}
    for device in ("cpu", "cuda"):
        work = copy_workflow(Path(tempfile.mkdtemp(prefix=f"gpu-check-{device}-")))
        config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
        for exp in config["experiments"].values():
            exp["training"] = {**exp["training"], "device": device}
        (work / "gpu.yaml").write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "8",
            "--configfile",
            "gpu.yaml",
            "--resources",
            "gpu=1",
            "results/tables/runs.csv",
        ]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode:
            verdict(f"demo on {device}", False, proc.stderr[-1500:])
            return
        print(f"demo on {device}: {wall:.1f} s")
        results[device] = pd.read_csv(work / "results/tables/runs.csv")
    cpu, gpu = (results[d].set_index(["experiment", "loss", "seed"]) for d in ("cpu", "cuda"))
    rel = ((gpu["final_test_mse"] - cpu["final_test_mse"]).abs() / cpu["final_test_mse"]).max()
    verdict(
        "demo cuda vs cpu",
        None,
        f"largest relative difference of a final test MSE {rel:.2e}"
        " (60 epochs of float32 round-off apart)",
    )


def utkf_models(steps: int = 300) -> dict[str, float]:
    from biv.models import build_model
    from biv.optim import Adam
    from biv.spec import ModelSpec

    rates = {}
    for name in ("cnn", "resnet18"):
        finals = []
        for _ in range(2):
            torch.manual_seed(0)
            model = build_model(ModelSpec.from_config("m", {"name": name}), (3, 200, 200)).cuda()
            optimizer = Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator(device="cuda").manual_seed(0)
            x = torch.rand(256, 3, 200, 200, device="cuda", generator=gen)
            y = torch.rand(256, device="cuda", generator=gen)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                loss = (model(x).squeeze(1) - y).square().mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            torch.cuda.synchronize()
            rates[name] = steps / (time.perf_counter() - start)
            finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]).cpu())
        model.eval()
        with torch.inference_mode():
            x_test = torch.rand(1024, 3, 200, 200, device="cuda", generator=gen)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(4):  # one evaluation of 4,000 test images, in chunks of 1024
                model(x_test)
            torch.cuda.synchronize()
        rates[f"{name}_eval_s"] = time.perf_counter() - start
        same = torch.equal(finals[0], finals[1])
        verdict(
            f"{name} 200x200 bitwise repeatable",
            same,
            f"{steps} steps twice from seed 0; {rates[name]:.1f} steps/s",
        )
    return rates


def paper_estimate(rates: dict[str, float]) -> None:
    import yaml

    from biv.spec import build_plan

    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    with contextlib.chdir(ROOT):  # the config names its reference file relative to the root
        plan = build_plan(config, check_files=False)
    hours = {}
    for run in plan.runs:
        exp = plan.experiments[run.experiment]
        images = exp.model.name != "mlp"
        n = plan.datasets[exp.dataset].n_train
        steps = exp.training.steps_per_epoch(n) * exp.training.epochs
        model = "cnn" if exp.model.name == "cnn" else "resnet18"
        seconds = steps * 5e-3  # Bike: a step with its test evaluation (README, H100)
        if images:
            evaluations = -(-steps // exp.training.eval_every)
            seconds = steps / rates[model] + evaluations * rates[f"{model}_eval_s"]
        hours[exp.model.name] = hours.get(exp.model.name, 0.0) + seconds / 3600
    verdict(
        "paper.yaml GPU-hours",
        None,
        f"{ {k: round(v, 1) for k, v in hours.items()} }"
        " (images: measured steps and 4,000-image evaluations; Bike: the README's 5 ms a step)",
    )


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 2
    start = time.perf_counter()
    sections = [versions, cuda_tests, host_syncs, graphs, demo_on_cuda]
    for section in sections:
        print(f"\n== {section.__name__}", flush=True)
        try:
            section()
        except Exception as err:  # a check that crashes is a finding, and the others still run
            verdict(section.__name__, False, f"crashed: {err!r}")
    print("\n== utkf_models / paper_estimate", flush=True)
    try:
        paper_estimate(utkf_models())
    except Exception as err:
        verdict("utkf_models", False, f"crashed: {err!r}")
    print(
        "\n[NOT RUN] stacked training (solo vs stacked demo, a 20-run Bike pack): no pack "
        "trainer yet"
    )
    print(f"\n{time.perf_counter() - start:.0f} s; failed: {FAILED or 'none'}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
