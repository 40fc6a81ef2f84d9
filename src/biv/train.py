"""One training run, ``biv train PARAMS OUT_DIR``: one (dataset, noise draw, loss, seed).

Inputs, noisy labels and their variances live on the device as tensors; batches are index slices
of a per-epoch permutation drawn from a seeded generator (sequential when ``shuffle`` is false).
Labels and variances are normalized with the train-split label statistics when ``normalize`` is
true (variances and cutoff thresholds divided by y_std**2; BIV's epsilon is used as given).
The run checkpoints atomically every ``checkpoint_every`` steps and resumes from its checkpoint,
ending with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from biv import io as biv_io
from biv import logs
from biv.cuda_step import make_steps, use_cuda_graphs
from biv.data import load_prepared
from biv.evaluation import predict
from biv.losses import check_variances, cutoff_kept, make_loss
from biv.metrics import RunMetrics, best_index, eval_errors, metrics_csv
from biv.models import build_model
from biv.noise import load_draw
from biv.optim import Adam
from biv.provenance import provenance
from biv.spec import LossSpec, RunSpec, TrainingSpec

log = logging.getLogger("biv.train")

CHECKPOINT = "checkpoint.pt"
OUTPUTS = ("metrics.csv", "predictions.csv", "summary.json")
LOG_EVERY_S = 5.0
FINITE_CHECK_EVERY = 64


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


# ----------------------------------------------------------------------------- run parameters


def _fail(key: str, value: object, allowed: str) -> None:
    raise ValueError(f"{key}: {value!r} is not allowed; expected {allowed}")


def loss_in_model_units(loss: LossSpec, y_std: float, normalize: bool) -> dict:
    """The loss spec for variances in model units: a raw-units² cutoff threshold / y_std**2."""
    spec = loss.to_dict()
    if loss.type == "cutoff" and normalize:
        spec["threshold"] = loss.threshold / y_std**2
    return spec


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        _fail("training.device", name, "'auto' or 'cpu': CUDA is not available on this machine")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------- data


@dataclass
class RunData:
    """Training and test tensors on the device, in model units (see module docstring)."""

    x_train: torch.Tensor  # normalized float (N, F) or uint8 images (N, 3, H, W)
    y_train: torch.Tensor  # (N,) float32, noisy labels
    var_train: torch.Tensor  # (N,) float32, the label variances the loss sees
    x_test: torch.Tensor
    y_test: torch.Tensor  # (M,) float32, clean labels
    y_test_raw: torch.Tensor  # (M,) float32 on the CPU
    y_mean: float
    y_std: float
    pixel_mean: torch.Tensor | None  # (1, 3, 1, 1) for images
    pixel_std: torch.Tensor | None
    meta: dict
    noise_meta: dict | None

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs of a batch already on the device: uint8 -> /255 -> per-channel normalize."""
        if self.pixel_mean is None:
            return x
        return x.float().div_(255.0).sub_(self.pixel_mean).div_(self.pixel_std)


def _existing(key: str, path: str) -> Path:
    resolved = Path(path)
    if not resolved.is_file():
        raise FileNotFoundError(f"{key}: file {path!r} does not exist")
    return resolved


def _check_finite(key: str, name: str, tensor: torch.Tensor) -> None:
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{key}: {name} contains NaN or infinite values")


def load_run_data(run: RunSpec, device: torch.device) -> RunData:
    """Load the prepared dataset and the noise draw, check them and move them to ``device``."""
    data_file = run.dataset.file
    data = load_prepared(_existing("dataset.file", data_file))
    x_train, x_test = data["x_train"], data["x_test"]
    y_train, y_test = data["y_train"].float(), data["y_test"].float()
    images = x_train.dtype == torch.uint8
    if images and (x_train.ndim != 4 or x_train.shape[1] != 3):
        _fail("dataset.file", data_file, f"uint8 images (N, 3, H, W), got {tuple(x_train.shape)}")
    if not images and (x_train.ndim != 2 or not x_train.is_floating_point()):
        _fail("dataset.file", data_file, f"float features (N, F), got {tuple(x_train.shape)}")
    if x_test.dtype != x_train.dtype or x_test.shape[1:] != x_train.shape[1:]:
        _fail("dataset.file", data_file, "x_test of the same dtype and sample shape as x_train")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test) or not len(y_test):
        _fail("dataset.file", data_file, "matching, non-empty x/y train and test lengths")
    stats_shape = (3,) if images else tuple(x_train.shape[1:])
    if data["x_mean"].shape != stats_shape or data["x_std"].shape != stats_shape:
        _fail("dataset.file", data_file, f"x_mean and x_std of shape {stats_shape}")
    y_mean, y_std = float(data["y_mean"]), float(data["y_std"])
    if not math.isfinite(y_mean) or not math.isfinite(y_std) or y_std <= 0:
        _fail("dataset.file", data_file, f"finite y_mean and y_std > 0, got {y_mean}, {y_std}")
    _check_finite("dataset.file", "y_train/y_test", torch.cat([y_train, y_test]))

    noise_meta = None
    var = torch.zeros_like(y_train)
    if run.noise is not None:
        noise_file = run.noise.file
        draw, noise_meta = load_draw(_existing("noise.file", noise_file))
        if draw.y_noisy.shape != y_train.shape or draw.var_seen.shape != y_train.shape:
            _fail("noise.file", noise_file, f"a draw for {len(y_train)} training labels")
        y_train, var = draw.y_noisy.float(), draw.var_seen.float()
        _check_finite("noise.file", "y_noisy/var_seen", torch.cat([y_train, var]))
        if bool((var < 0).any()):
            _fail("noise.file", noise_file, "label variances >= 0")

    normalize = run.training.normalize

    def labels(y: torch.Tensor) -> torch.Tensor:
        y = y.to(device, torch.float64)
        return ((y - y_mean) / y_std).float() if normalize else y.float()

    x_mean = data["x_mean"].to(device, torch.float32)
    x_std = data["x_std"].to(device, torch.float32)
    if images:
        pixel_mean, pixel_std = x_mean.reshape(1, 3, 1, 1), x_std.reshape(1, 3, 1, 1)
        x_train_dev, x_test_dev = x_train.to(device), x_test.to(device)
    else:
        pixel_mean = pixel_std = None
        x_train_dev = (x_train.to(device, torch.float32) - x_mean) / x_std
        x_test_dev = (x_test.to(device, torch.float32) - x_mean) / x_std
    var_dev = var.to(device, torch.float64)
    return RunData(
        x_train=x_train_dev,
        y_train=labels(y_train),
        var_train=(var_dev / y_std**2 if normalize else var_dev).float(),
        x_test=x_test_dev,
        y_test=labels(y_test),
        y_test_raw=y_test.clone(),
        y_mean=y_mean,
        y_std=y_std,
        pixel_mean=pixel_mean,
        pixel_std=pixel_std,
        meta=data["meta"],
        noise_meta=noise_meta,
    )


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class Progress:
    """Where the loop stands: completed steps, the current epoch's permutation, elapsed time."""

    step: int = 0
    perm: torch.Tensor | None = None
    wall_time_s: float = 0.0


def save_checkpoint(
    path: Path,
    run: RunSpec,
    progress: Progress,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    metrics: RunMetrics,
    device: torch.device,
) -> None:
    cuda = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    biv_io.torch_save(
        path,
        {
            "params": run.to_dict(),
            "step": progress.step,
            "perm": progress.perm,
            "wall_time_s": progress.wall_time_s,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda, "shuffle": generator.get_state()},
            "metrics": metrics.state_dict(),
        },
    )


def load_checkpoint(
    path: Path,
    run: RunSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[Progress, RunMetrics]:
    """Restore model, optimizer and RNG states; the checkpoint must be of the same parameters."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    params = run.to_dict()
    if state["params"] != params:
        differing = sorted(k for k in params if state["params"].get(k) != params[k])
        raise ValueError(
            f"checkpoint {str(path)!r} was written for other run parameters "
            f"(differing: {differing}); delete it or use another output folder"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    generator.set_state(state["rng"]["shuffle"])
    progress = Progress(state["step"], state["perm"], state["wall_time_s"])
    return progress, RunMetrics.from_state_dict(state["metrics"], device)


# ----------------------------------------------------------------------------- the run


def _determinism(device: torch.device) -> dict:
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "torch_num_threads": torch.get_num_threads(),
    }


def _clean(out: Path) -> None:
    """Remove outputs of an earlier attempt and temporary files left by a killed one."""
    for name in (*OUTPUTS, CHECKPOINT, "run.json"):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(run: RunSpec | dict, out_dir: str | Path) -> dict:
    """Run (or resume) one training and write its run folder; returns the summary dict."""
    if not isinstance(run, RunSpec):
        run = RunSpec.from_dict(run)
    tr = run.training
    device = resolve_device(tr.device)
    data = load_run_data(run, device)
    n_train, bs = len(data.y_train), tr.batch_size
    steps_per_epoch = tr.steps_per_epoch(n_train)
    if steps_per_epoch == 0:
        _fail("training.batch_size", bs, f"at most {n_train} (the training set) with drop_last")
    smallest = bs if tr.drop_last else n_train - (steps_per_epoch - 1) * bs
    if run.model.has_batchnorm and smallest < 2:
        _fail(
            "training.batch_size",
            bs,
            f"a size leaving no batch of 1 sample with BatchNorm ({n_train} training samples)",
        )
    total = steps_per_epoch * tr.epochs
    loss_spec = loss_in_model_units(run.loss, data.y_std, tr.normalize)
    loss_fn = make_loss(loss_spec)
    check_variances(loss_spec, data.var_train)  # once: the loss skips its per-step checks
    adaptive = loss_spec["type"] == "biv_adaptive"

    determinism = _determinism(device)
    torch.manual_seed(run.seed)
    model = build_model(run.model, tuple(data.x_train.shape[1:])).to(device)
    cuda_graphs = use_cuda_graphs(tr.cuda_graphs, device, model, loss_spec["type"])
    optimizer = Adam(model.parameters(), lr=tr.lr, capturable=cuda_graphs)
    generator = torch.Generator().manual_seed(run.seed)
    out = Path(out_dir)
    checkpoint = out / CHECKPOINT
    progress, metrics = Progress(), RunMetrics()
    if checkpoint.is_file():
        progress, metrics = load_checkpoint(checkpoint, run, model, optimizer, generator, device)

    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    biv_io.write_json(
        out / "run.json",
        {
            **run.to_dict(),
            "device": {"type": device.type, "name": device_name(device)},
            "provenance": provenance(),
            "run": {
                "determinism": determinism,
                "loss_in_model_units": loss_spec,
                "n_train": n_train,
                "n_test": len(data.y_test),
                "y_mean": data.y_mean,
                "y_std": data.y_std,
                "steps_per_epoch": steps_per_epoch,
                "total_steps": total,
                "resumed_from_step": progress.step,
                # the image file list stays in the prepared file (UTKFace: ~1 MB of names)
                "dataset_meta": {k: v for k, v in data.meta.items() if k != "files"},
                "noise_meta": data.noise_meta,
            },
        },
    )
    log.info(
        "%s/%s seed %d: %d steps (%d epochs x %d) on %s%s",
        run.experiment,
        run.loss_name,
        run.seed,
        total,
        tr.epochs,
        steps_per_epoch,
        device,
        f", resuming after step {progress.step}" if progress.step else "",
    )

    chunks = list(data.x_test.split(tr.eval_batch_size))
    steps = make_steps(
        model, optimizer, loss_fn, data, chunks, cuda_graphs=cuda_graphs, eval_bf16=tr.eval_bf16
    )
    kept = cutoff_kept(loss_spec, data.var_train)  # cutoff: empty batches found on the CPU
    x, y, var = data.x_train, data.y_train, data.var_train
    eval_every, ckpt_every, shuffle = tr.eval_every, tr.checkpoint_every, tr.shuffle
    zero = torch.zeros((), device=device)
    perm = None if progress.perm is None else progress.perm.to(device)
    start_step, prior_wall = progress.step, progress.wall_time_s
    session_start = time.perf_counter()
    next_log = session_start + LOG_EVERY_S
    model.train()

    def check_finite() -> None:
        bad = metrics.first_nonfinite()
        if bad is not None:
            raise NonFiniteLossError(f"training loss is {bad[1]} at step {bad[0]}")

    step = progress.step
    while step < total:
        batch = step % steps_per_epoch
        if batch == 0 and shuffle:
            progress.perm = torch.randperm(n_train, generator=generator)
            perm = progress.perm.to(device, non_blocking=True)
        lo, hi = batch * bs, min(batch * bs + bs, n_train)
        if shuffle:
            idx = perm[lo:hi]
            xb, yb, vb = x[idx], y[idx], var[idx]
        else:
            xb, yb, vb = x[lo:hi], y[lo:hi], var[lo:hi]
        step += 1
        rows = progress.perm[lo:hi] if shuffle else slice(lo, hi)
        empty = kept is not None and not bool(kept[rows].any())
        result = steps.train_step(xb, yb, vb, empty)
        if result.value is None:
            metrics.skipped.append(step)
            metrics.losses.append(zero)
        else:
            metrics.losses.append(result.value)
            if adaptive:
                metrics.epsilon.append((step, result.epsilon))
        if step % eval_every == 0 or step == total:
            metrics.test_sums.append(steps.evaluate())
            metrics.eval_steps.append(step)
        if step % FINITE_CHECK_EVERY == 0:
            check_finite()
        if ckpt_every and step % ckpt_every == 0 and step < total:
            check_finite()
            progress.step = step
            progress.wall_time_s = prior_wall + time.perf_counter() - session_start
            save_checkpoint(checkpoint, run, progress, model, optimizer, generator, metrics, device)
        now = time.perf_counter()
        if now >= next_log:
            next_log = now + LOG_EVERY_S
            rate = (step - start_step) / (now - session_start)
            _log_progress(metrics, data, tr, step, total, steps_per_epoch, rate)
    check_finite()
    progress.step = step
    progress.wall_time_s = prior_wall + time.perf_counter() - session_start
    return _finish(run, out, model, data, chunks, metrics, steps_per_epoch, progress)


def _log_progress(
    metrics: RunMetrics,
    data: RunData,
    training: TrainingSpec,
    step: int,
    total: int,
    steps_per_epoch: int,
    rate: float,
) -> None:
    loss = "skipped" if metrics.skipped[-1:] == [step] else f"{float(metrics.losses[-1]):.5g}"
    test = "n/a"
    if metrics.test_sums:
        mse = float(metrics.test_sums[-1][0]) / len(data.y_test)
        test = f"{mse if training.normalize else mse / data.y_std**2:.5g}"
    log.info(
        "epoch %d/%d step %d/%d loss %s test_mse %s skipped %d | %.1f steps/s, %s left",
        (step - 1) // steps_per_epoch + 1,
        training.epochs,
        step,
        total,
        loss,
        test,
        len(metrics.skipped),
        rate,
        _format_duration((total - step) / rate),
    )


def _finish(
    run: RunSpec,
    out: Path,
    model: nn.Module,
    data: RunData,
    chunks: list[torch.Tensor],
    metrics: RunMetrics,
    steps_per_epoch: int,
    progress: Progress,
) -> dict:
    """Write metrics.csv, predictions.csv and summary.json, then remove the checkpoint."""
    normalize = run.training.normalize
    total = progress.step
    errors = eval_errors(metrics, len(data.y_test), data.y_std, normalize)
    biv_io.write_text(out / "metrics.csv", metrics_csv(metrics, errors, total, steps_per_epoch))
    pred = predict(model, data, chunks).double().cpu()
    if normalize:
        pred = pred * data.y_std + data.y_mean
    rows = [
        f"{i},{t:.9g},{p!r}"
        for i, (t, p) in enumerate(zip(data.y_test_raw.tolist(), pred.tolist(), strict=True))
    ]
    biv_io.write_text(out / "predictions.csv", "index,y_true,y_pred\n" + "\n".join(rows) + "\n")
    best = best_index(errors.mse)
    wall = progress.wall_time_s
    summary = {
        "experiment": run.experiment,
        "loss_name": run.loss_name,
        "seed": run.seed,
        "best_test_mse": errors.mse[best],
        "best_step": errors.steps[best],
        "final_test_mse": errors.mse[-1],
        "final_test_mse_raw": errors.mse_raw[-1],
        "final_test_mae_raw": errors.mae_raw[-1],
        "skipped_steps": len(metrics.skipped),
        "steps": total,
        "wall_time_s": wall,
        "steps_per_s": total / wall if wall > 0 else None,
    }
    biv_io.write_json(out / "summary.json", summary)
    (out / CHECKPOINT).unlink(missing_ok=True)
    log.info(
        "done: final test MSE %.5g (raw %.5g), best %.5g at step %d, %d skipped steps, "
        "%.1f s (%.1f steps/s)",
        summary["final_test_mse"],
        summary["final_test_mse_raw"],
        summary["best_test_mse"],
        summary["best_step"],
        summary["skipped_steps"],
        wall,
        summary["steps_per_s"] or 0.0,
    )
    return summary


def main(params_path: str | Path, out_dir: str | Path) -> int:
    """``biv train PARAMS OUT_DIR``: 0 on success, 2 for bad input, 1 for a non-finite loss."""
    logs.setup()
    try:
        try:
            params = json.loads(Path(params_path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"run parameters file {str(params_path)!r} does not exist"
            ) from None
        except json.JSONDecodeError as err:
            raise ValueError(
                f"run parameters file {str(params_path)!r}: invalid JSON ({err})"
            ) from None
        train(RunSpec.from_dict(params), out_dir)
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    except NonFiniteLossError as err:
        log.error("%s", err)
        return 1
    return 0
