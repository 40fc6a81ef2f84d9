"""The training loop of one run: one (dataset, noise draw, loss, seed).

Inputs, noisy labels and their variances live on the device as tensors; batches are index slices
of a per-epoch permutation drawn from a seeded generator (sequential when ``shuffle`` is false).
Labels and variances are normalized with the train-split label statistics when ``normalize`` is
true (variances and cutoff thresholds divided by y_std**2; BIV's epsilon is used as given).
The run checkpoints atomically every ``checkpoint_every`` steps and resumes from its checkpoint,
ending with the same metrics as an uninterrupted run. Its files (``OUTPUTS``) are written only when
it ends, so a killed run leaves nothing but its checkpoint behind.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import nn

from biv import atomic
from biv.checkpoints import (
    CheckpointError,
    Progress,
    load_checkpoint,
    plain_params,
    save_checkpoint,
)
from biv.cuda_step import make_steps, use_cuda_graphs
from biv.devices import device_name, exact_float32, resolve_device
from biv.evaluation import predict, use_bf16
from biv.losses import check_variances, cutoff_kept, make_loss
from biv.metrics import (
    RunMetrics,
    best_index,
    eval_errors,
    final_scores,
    metrics_csv,
    predictions_csv,
)
from biv.models import build_model
from biv.optim import Adam
from biv.provenance import provenance
from biv.run_data import RunData, load_run_data
from biv.spec import LossSpec, RunSpec, TrainingSpec
from biv.spec.errors import fail

log = logging.getLogger("biv.train")

CHECKPOINT = "checkpoint.pt"
# written when the run ends, so that a killed run leaves none of them; params.json too (last, and
# never deleted: `biv train` may be reading it)
OUTPUTS = ("run.json", "metrics.csv", "predictions.csv", "summary.json")
LOG_EVERY_S = 5.0
FINITE_CHECK_EVERY = 64


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def loss_in_model_units(loss: LossSpec, y_std: float, normalize: bool) -> dict:
    """The loss spec for variances in model units: a raw-units² cutoff threshold / y_std**2."""
    spec = loss.to_dict()
    if loss.type == "cutoff" and normalize:
        spec["threshold"] = loss.threshold / y_std**2
    return spec


def _determinism(device: torch.device) -> dict:
    """Deterministic cuDNN and exact float32 (no TF32) on CUDA; the flags, for the run record."""
    float32 = exact_float32(device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "torch_num_threads": torch.get_num_threads(),
        **float32,
    }


def _clean(out: Path) -> None:
    """Remove outputs of an earlier attempt and temporary files left by a killed one."""
    for name in (*OUTPUTS, CHECKPOINT):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _start(run: RunSpec, data: RunData, loss_type: str, device: torch.device):
    """The model, optimizer and batch-order generator of the run's step 0."""
    tr = run.training
    torch.manual_seed(run.seed)
    model = build_model(run.model, tuple(data.x_train.shape[1:])).to(device)
    cuda_graphs = use_cuda_graphs(tr.cuda_graphs, device, model, loss_type)
    optimizer = Adam(model.parameters(), lr=tr.lr, capturable=cuda_graphs)
    generator = torch.Generator().manual_seed(run.seed)
    return model, cuda_graphs, optimizer, generator


def train(run: RunSpec | dict, out_dir: str | Path, *, discard_unusable_checkpoint=False) -> dict:
    """Run (or resume) one training and write its run folder; returns the summary dict.

    A checkpoint in ``out_dir`` that cannot be resumed from (other parameters, damaged, another
    version) raises ``CheckpointError``; with ``discard_unusable_checkpoint`` (workflow jobs,
    where the config is the user's intent) it is logged, deleted, and training starts afresh."""
    if not isinstance(run, RunSpec):
        run = RunSpec.from_dict(run)
    tr = run.training
    device = resolve_device(tr.device)
    data = load_run_data(run, device)
    n_train, bs = len(data.y_train), tr.batch_size
    steps_per_epoch = tr.steps_per_epoch(n_train)
    if steps_per_epoch == 0:
        raise fail(
            "training.batch_size", bs, f"at most {n_train} (the training set) with drop_last"
        )
    if run.model.has_batchnorm:
        tr.check_batchnorm("training.batch_size", n_train)
    total = steps_per_epoch * tr.epochs
    loss_spec = loss_in_model_units(run.loss, data.y_std, tr.normalize)
    loss_fn = make_loss(loss_spec)
    check_variances(loss_spec, data.var_train)  # once: the loss skips its per-step checks
    adaptive = loss_spec["type"] == "biv_adaptive"

    determinism = _determinism(device)
    model, cuda_graphs, optimizer, generator = _start(run, data, loss_spec["type"], device)
    out = Path(out_dir)
    checkpoint = out / CHECKPOINT
    progress, metrics = Progress(), RunMetrics()
    if checkpoint.is_file():
        try:
            progress, metrics = load_checkpoint(
                checkpoint, run, model, optimizer, generator, device
            )
        except CheckpointError as err:
            if not discard_unusable_checkpoint:
                raise CheckpointError(f"{err}; delete it or use another output folder") from err
            log.warning("%s: deleted, training starts from step 0", err)
            checkpoint.unlink()
            model, cuda_graphs, optimizer, generator = _start(run, data, loss_spec["type"], device)

    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    record = {
        **plain_params(run),
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
    }
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
    # biv_adaptive: its epsilon search reads the batch's variances from this host copy
    var_host = data.var_train.to("cpu", torch.float64).numpy() if adaptive else None
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
        vb_host = None if var_host is None else var_host[rows.numpy() if shuffle else rows]
        result = steps.train_step(xb, yb, vb, empty, vb_host)
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
    record["run"]["cuda_graphs"] = {"requested": tr.cuda_graphs, **steps.record()}
    record["run"]["eval_bf16"] = {
        "requested": tr.eval_bf16,
        "used": use_bf16(tr.eval_bf16, chunks[0]),
    }
    progress.step = step
    progress.wall_time_s = prior_wall + time.perf_counter() - session_start
    return _finish(run, record, out, model, data, chunks, metrics, steps_per_epoch, progress)


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
    record: dict,
    out: Path,
    model: nn.Module,
    data: RunData,
    chunks: list[torch.Tensor],
    metrics: RunMetrics,
    steps_per_epoch: int,
    progress: Progress,
) -> dict:
    """Write the run's files (``record`` as run.json), then remove the checkpoint."""
    normalize = run.training.normalize
    total = progress.step
    errors = eval_errors(metrics, len(data.y_test), data.y_std, normalize, data.var_test)
    atomic.write_text(out / "metrics.csv", metrics_csv(metrics, errors, total, steps_per_epoch))
    # as the logged test errors were computed (bf16 too, where asked for and used)
    pred = predict(model, data, chunks, run.training.eval_bf16).double().cpu()
    if normalize:
        pred = pred * data.y_std + data.y_mean
    atomic.write_text(
        out / "predictions.csv", predictions_csv(data.y_test_raw, pred, data.var_test)
    )
    wall = progress.wall_time_s
    summary = {
        "experiment": run.experiment,
        "loss_name": run.loss_name,
        "seed": run.seed,
        **final_scores(errors, data.y_test_raw, pred, data.var_test),
        "skipped_steps": len(metrics.skipped),
        "steps": total,
        "wall_time_s": wall,
        "steps_per_s": total / wall if wall > 0 else None,
    }
    atomic.write_json(out / "summary.json", summary)
    atomic.write_json(out / "run.json", record)
    atomic.write_json(out / "params.json", plain_params(run))
    (out / CHECKPOINT).unlink(missing_ok=True)
    name = "test MSE" if errors.clean_labels else "clean MSE estimate"
    log.info(
        "done: final %s %.5g (raw %.5g), best %.5g at step %d, %d skipped steps, "
        "%.1f s (%.1f steps/s)",
        name,
        errors.scored[-1],
        errors.mse_raw[-1] if errors.clean_labels else errors.clean_mse_est_raw[-1],
        errors.scored[best_index(errors.scored)],
        summary["best_step"],
        summary["skipped_steps"],
        wall,
        summary["steps_per_s"] or 0.0,
    )
    return summary


def run_training(run: RunSpec, out_dir: str | Path) -> int:
    """Train ``run`` into ``out_dir`` as a command does (``biv train``, ``biv legacy``), errors
    logged: 0 on success, 2 for bad input (an unusable checkpoint too), 1 for a non-finite loss."""
    try:
        train(run, out_dir)
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    except NonFiniteLossError as err:
        log.error("%s", err)
        return 1
    return 0
