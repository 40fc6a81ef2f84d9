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
from dataclasses import dataclass
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


def train(run: RunSpec | dict, out_dir: str | Path, *, discard_unusable_checkpoint=False) -> dict:
    """Run (or resume) one training and write its run folder; returns the summary dict.

    A checkpoint in ``out_dir`` that cannot be resumed from (other parameters, damaged, another
    version) raises ``CheckpointError``; with ``discard_unusable_checkpoint`` (workflow jobs,
    where the config is the user's intent) it is logged, deleted, and training starts afresh."""
    # setup: the run's data on its device, checked; the loss in model units
    run = run if isinstance(run, RunSpec) else RunSpec.from_dict(run)
    tr = run.training
    device = resolve_device(tr.device)
    data = load_run_data(run, device)
    _check_batches(run, data)
    loss_spec = loss_in_model_units(run.loss, data.y_std, tr.normalize)
    check_variances(loss_spec, data.var_train)  # once: the loss skips its per-step checks
    determinism = _determinism(device)

    # state at step 0, or where the checkpoint left it
    out, checkpoint = Path(out_dir), Path(out_dir) / CHECKPOINT
    try:
        state = _State.resume(run, data, loss_spec["type"], device, checkpoint)
    except CheckpointError as err:
        if not discard_unusable_checkpoint:
            raise CheckpointError(f"{err}; delete it or use another output folder") from err
        log.warning("%s: deleted, training starts from step 0", err)
        checkpoint.unlink()
        state = _State.fresh(run, data, loss_spec["type"], device)
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    batches = Batches(data, tr, state, loss_spec)
    record = _record(run, data, device, determinism, loss_spec, batches, state.progress)
    log.info("%s/%s seed %d: %s", run.experiment, run.loss_name, run.seed, batches.describe(device))

    # the loop: a step, the test evaluation every eval_every steps, a checkpoint every
    # checkpoint_every steps (never at the end: the run's files are written instead)
    chunks = list(data.x_test.split(tr.eval_batch_size))
    steps = make_steps(
        state.model,
        state.optimizer,
        make_loss(loss_spec),
        data,
        chunks,
        cuda_graphs=state.cuda_graphs,
        eval_bf16=tr.eval_bf16,
        eval_protocol=tr.eval_protocol,
    )
    metrics, clock = state.metrics, _Clock(state.progress)
    zero = torch.zeros((), device=device)  # the training loss logged at a skipped step
    state.model.train()
    for step, batch in batches:
        _record_step(metrics, step, steps.train_step(*batch), loss_spec["type"], zero)
        if step % tr.eval_every == 0 or step == batches.total:
            metrics.test_sums.append(steps.evaluate())
            metrics.eval_steps.append(step)
        if step % FINITE_CHECK_EVERY == 0:
            _check_finite(metrics)
        if tr.checkpoint_every and step % tr.checkpoint_every == 0 and step < batches.total:
            _check_finite(metrics)
            clock.stop_at(step)
            state.save(checkpoint, run, device)
        clock.tick(step, lambda rate, step=step: _log_progress(metrics, data, step, batches, rate))
    _check_finite(metrics)
    record["run"]["cuda_graphs"] = {"requested": tr.cuda_graphs, **steps.record()}
    record["run"]["eval_bf16"] = {
        "requested": tr.eval_bf16,
        "used": use_bf16(tr.eval_bf16, chunks[0]),
    }
    clock.stop_at(batches.total)
    return write_run_folder(
        run, record, out, state.model, data, chunks, metrics, batches.per_epoch, state.progress
    )


def _check_batches(run: RunSpec, data: RunData) -> None:
    """The batch sizes must fit the data (checked at plan time too, for hand-written params)."""
    tr, n_train, n_test = run.training, len(data.y_train), len(data.y_test)
    if tr.steps_per_epoch(n_train) == 0:
        raise fail(
            "training.batch_size",
            tr.batch_size,
            f"at most {n_train} (the training set) with drop_last",
        )
    if run.model.has_batchnorm:
        tr.check_batchnorm(("training.batch_size", "training.eval_batch_size"), n_train, n_test)


@dataclass
class _State:
    """What a checkpoint holds: model, optimizer, batch-order generator, progress and metrics."""

    model: nn.Module
    cuda_graphs: bool
    optimizer: Adam
    generator: torch.Generator
    progress: Progress
    metrics: RunMetrics

    @classmethod
    def fresh(cls, run: RunSpec, data: RunData, loss_type: str, device: torch.device) -> _State:
        """The state of step 0 (the model initialised from the run's seed)."""
        tr = run.training
        torch.manual_seed(run.seed)
        model = build_model(run.model, tuple(data.x_train.shape[1:])).to(device)
        cuda_graphs = use_cuda_graphs(tr.cuda_graphs, device, model, loss_type)
        optimizer = Adam(model.parameters(), lr=tr.lr, capturable=cuda_graphs)
        generator = torch.Generator().manual_seed(run.seed)
        return cls(model, cuda_graphs, optimizer, generator, Progress(), RunMetrics())

    @classmethod
    def resume(cls, run, data, loss_type, device, checkpoint: Path) -> _State:
        """The state of ``checkpoint`` if there is one, else of step 0; ``CheckpointError`` if
        the checkpoint cannot be resumed from."""
        state = cls.fresh(run, data, loss_type, device)
        if checkpoint.is_file():
            state.progress, state.metrics = load_checkpoint(
                checkpoint, run, state.model, state.optimizer, state.generator, device
            )
        return state

    def save(self, checkpoint: Path, run: RunSpec, device: torch.device) -> None:
        save_checkpoint(
            checkpoint,
            run,
            self.progress,
            self.model,
            self.optimizer,
            self.generator,
            self.metrics,
            device,
        )


class Batches:
    """The run's steps from where the state's progress stands: (step, (inputs, labels,
    variances, empty, host variances)), steps counted from 1. Batches are slices of a per-epoch
    permutation of the training set drawn from the state's generator (kept in ``progress.perm``
    for checkpoints), or sequential without ``shuffle``; ``empty``: a cutoff batch with no
    sample under the threshold."""

    def __init__(self, data: RunData, tr: TrainingSpec, state: _State, loss_spec: dict):
        self.data, self.tr, self.generator, self.progress = (
            data,
            tr,
            state.generator,
            state.progress,
        )
        self.kept = cutoff_kept(loss_spec, data.var_train)  # cutoff: empty batches, on the CPU
        self.n_train = len(data.y_train)
        self.per_epoch = tr.steps_per_epoch(self.n_train)
        self.total = self.per_epoch * tr.epochs
        # biv_adaptive: its epsilon search reads the batch's variances from this host copy
        adaptive = loss_spec["type"] == "biv_adaptive"
        self.var_host = data.var_train.to("cpu", torch.float64).numpy() if adaptive else None
        self.device = data.y_train.device

    def describe(self, device: torch.device) -> str:
        resumed = f", resuming after step {self.progress.step}" if self.progress.step else ""
        return (
            f"{self.total} steps ({self.tr.epochs} epochs x {self.per_epoch}) on {device}{resumed}"
        )

    def __iter__(self):
        x, y, var, bs, shuffle = (
            self.data.x_train,
            self.data.y_train,
            self.data.var_train,
            self.tr.batch_size,
            self.tr.shuffle,
        )
        perm = None if self.progress.perm is None else self.progress.perm.to(self.device)
        for step in range(self.progress.step, self.total):
            batch = step % self.per_epoch
            if batch == 0 and shuffle:
                self.progress.perm = torch.randperm(self.n_train, generator=self.generator)
                perm = self.progress.perm.to(self.device, non_blocking=True)
            lo, hi = batch * bs, min(batch * bs + bs, self.n_train)
            index = perm[lo:hi] if shuffle else slice(lo, hi)
            rows = self.progress.perm[lo:hi] if shuffle else slice(lo, hi)
            empty = self.kept is not None and not bool(self.kept[rows].any())
            host = None
            if self.var_host is not None:
                host = self.var_host[rows.numpy() if shuffle else rows]
            yield step + 1, (x[index], y[index], var[index], empty, host)


class _Clock:
    """Wall time of the run across resumes, and a progress log line every LOG_EVERY_S seconds."""

    def __init__(self, progress: Progress):
        self.progress, self.first_step = progress, progress.step
        self.prior, self.start = progress.wall_time_s, time.perf_counter()
        self.next_log = self.start + LOG_EVERY_S

    def stop_at(self, step: int) -> None:
        """Record the step reached and the wall time so far in ``progress``."""
        self.progress.step = step
        self.progress.wall_time_s = self.prior + time.perf_counter() - self.start

    def tick(self, step: int, log_line) -> None:
        now = time.perf_counter()
        if now >= self.next_log:
            self.next_log = now + LOG_EVERY_S
            log_line((step - self.first_step) / (now - self.start))


def _record_step(metrics: RunMetrics, step: int, result, loss_type: str, zero) -> None:
    if result.value is None:
        metrics.skipped.append(step)
        metrics.losses.append(zero)
    else:
        metrics.losses.append(result.value)
        if loss_type == "biv_adaptive":
            metrics.epsilon.append((step, result.epsilon))


def _check_finite(metrics: RunMetrics) -> None:
    bad = metrics.first_nonfinite()
    if bad is not None:
        raise NonFiniteLossError(f"training loss is {bad[1]} at step {bad[0]}")


def _record(run, data, device, determinism, loss_spec, batches, progress) -> dict:
    """The run record (run.json), written when the run ends."""
    return {
        **plain_params(run),
        "device": {"type": device.type, "name": device_name(device)},
        "provenance": provenance(),
        "run": {
            "determinism": determinism,
            "evaluation": run.training.eval_text(),
            "loss_in_model_units": loss_spec,
            "n_train": len(data.y_train),
            "n_test": len(data.y_test),
            "y_mean": data.y_mean,
            "y_std": data.y_std,
            "steps_per_epoch": batches.per_epoch,
            "total_steps": batches.total,
            "resumed_from_step": progress.step,
            # the image file list stays in the prepared file (UTKFace: ~1 MB of names)
            "dataset_meta": {k: v for k, v in data.meta.items() if k != "files"},
            "noise_meta": data.noise_meta,
        },
    }


def _log_progress(
    metrics: RunMetrics, data: RunData, step: int, batches: Batches, rate: float
) -> None:
    tr = batches.tr
    loss = "skipped" if metrics.skipped[-1:] == [step] else f"{float(metrics.losses[-1]):.5g}"
    test = "n/a"
    if metrics.test_sums:
        mse = float(metrics.test_sums[-1][0]) / len(data.y_test)
        test = f"{mse if tr.normalize else mse / data.y_std**2:.5g}"
    log.info(
        "epoch %d/%d step %d/%d loss %s test_mse %s skipped %d | %.1f steps/s, %s left",
        (step - 1) // batches.per_epoch + 1,
        tr.epochs,
        step,
        batches.total,
        loss,
        test,
        len(metrics.skipped),
        rate,
        _format_duration((batches.total - step) / rate),
    )


def write_run_folder(
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
    # as the logged test errors were computed (bf16 and the protocol too)
    tr = run.training
    pred = predict(model, data, chunks, tr.eval_bf16, protocol=tr.eval_protocol).double().cpu()
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
