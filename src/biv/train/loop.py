"""The training loop of a pack: runs (dataset, noise setting, loss, seed) that share the dataset,
the model and the training block, trained together in one process; a solo run is a pack of one.

Each member keeps its own noisy labels and variances, batch order (a generator seeded with its
seed), initial weights (those of a solo run of that seed), loss and Adam state; nothing couples
two members (``biv.train.pack_model``, ``biv.train.optim.PackAdam``). Inputs, labels and
variances live on the device as tensors; batches are index slices of a per-epoch permutation
of each member (sequential when ``shuffle`` is false). Labels and variances are normalized with the
train-split label statistics when ``normalize`` is true (variances, and the loss parameters in raw
label units such as a cutoff threshold, divided by y_std**2; BIV's epsilon is used as given). The
pack checkpoints atomically every ``checkpoint_every`` steps and resumes from its checkpoint,
ending with the same bytes as an uninterrupted run. Each member's files (``OUTPUTS``) are written
only when the pack ends, so a killed pack leaves nothing but its checkpoint behind. On SIGTERM (a
cluster's time limit or preemption) or SIGUSR2 (an early warning a job may ask for,
``--signal=USR2@90``) the pack finishes its step, checkpoints there and stops (:class:`Stopped`):
its retry resumes at that step, with no step lost.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from biv import atomic
from biv.config import LossSpec, Run, RunSpec, TrainingSpec
from biv.config.errors import fail
from biv.provenance import provenance
from biv.train.checkpoints import (
    CheckpointError,
    Progress,
    load_checkpoint,
    plain_params,
    save_checkpoint,
)
from biv.train.devices import GpuUnavailableError, determinism, device_name, resolve_device
from biv.train.evaluation import bf16_vs_float32, passes, predict, use_bf16
from biv.train.metrics import (
    PackMetrics,
    RunMetrics,
    best_index,
    eval_errors,
    eval_weights,
    final_scores,
    metrics_csv,
    predictions_csv,
)
from biv.train.optim import PackAdam
from biv.train.pack_model import ModulePack, StackedMLP, build_pack_model
from biv.train.run_data import RunData, load_run_data
from biv.train.step import Batch, StepResult, make_steps, use_cuda_graphs

log = logging.getLogger("biv.train.loop")

CHECKPOINT = "checkpoint.pt"
# written when the pack ends, so that a killed pack leaves none of them; params.json too (last,
# and never deleted: `biv train` may be reading it)
OUTPUTS = ("run.json", "metrics.csv", "predictions.csv", "summary.json")
LOG_EVERY_S = 5.0
FINITE_CHECK_EVERY = 64


class NonFiniteLossError(RuntimeError):
    """A member's training loss became NaN or infinite."""


#: Signals on which a pack checkpoints at the end of its step and stops.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class Stopped(RuntimeError):
    """A pack stopped on a signal after checkpointing; ``signum`` says which."""

    def __init__(self, signum: int, step: int):
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step}; its checkpoint resumes there")
        self.signum = signum


def run_name(run: RunSpec | Run) -> str:
    """How logs and errors name a run (``experiment/loss/seedN``)."""
    return f"{run.experiment}/{run.loss_name}/seed{run.seed}"


def _clean(out: Path) -> None:
    """Make the folder ``out`` if missing; remove outputs of an earlier attempt and temporary
    files left by a killed one."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (*OUTPUTS, CHECKPOINT):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(run: RunSpec | dict, out_dir: str | Path, *, discard_unusable_checkpoint=False) -> dict:
    """Train one run (a pack of one, its checkpoint in ``out_dir``); returns its summary."""
    summaries = train_pack(
        [run], [out_dir], out_dir, discard_unusable_checkpoint=discard_unusable_checkpoint
    )
    return summaries[0]


def train_pack(
    runs: list[RunSpec | dict],
    out_dirs: list[str | Path],
    pack_dir: str | Path,
    *,
    discard_unusable_checkpoint: bool = False,
    dtype: torch.dtype = torch.float32,
) -> list[dict]:
    """Run (or resume) a pack: member i's run folder is ``out_dirs[i]``, the pack's checkpoint
    ``pack_dir``/checkpoint.pt; returns the members' summaries. ``dtype``: of the model and the
    float data (float64: to compare against other computations on the CPU).

    A checkpoint that cannot be resumed from (other parameters, damaged, another version)
    raises ``CheckpointError``; with ``discard_unusable_checkpoint`` (workflow jobs, where the
    config is the user's intent) it is logged, deleted, and training starts afresh."""
    # setup: the pack's data on its device, checked; the losses in model units
    runs = [run if isinstance(run, RunSpec) else RunSpec.from_dict(run) for run in runs]
    outs = [Path(out) for out in out_dirs]
    names = _check_pack(runs, outs)
    tr = runs[0].training
    device = resolve_device(tr.device)
    data = load_run_data(runs, device, dtype)
    _check_batches(runs[0], data)
    losses = _losses_in_model_units(runs, data)
    flags = determinism(device)

    # state at step 0, or where the checkpoint left it
    checkpoint = Path(pack_dir) / CHECKPOINT
    state = _State.start(runs, data, losses, dtype, checkpoint, discard_unusable_checkpoint)
    for out in outs:
        _clean(out)
    batches = Batches(data, tr, state, losses)
    log.info("%s: %s", ", ".join(names), batches.describe(device))

    # the loop: a step, the test evaluation every eval_every steps, a checkpoint every
    # checkpoint_every steps (never at the end: the runs' files are written instead)
    chunks = passes(state.model, data.x_test, tr.eval_batch_size, tr.eval_protocol)
    steps = make_steps(
        state.model,
        state.optimizer,
        losses,
        data,
        chunks,
        cuda_graphs=state.cuda_graphs,
        eval_bf16=tr.eval_bf16,
        eval_protocol=tr.eval_protocol,
        test_batch=tr.eval_batch_size,
    )
    metrics, clock = state.metrics, _Clock(state.progress)
    state.model.train()
    with _signals_received(STOP_SIGNALS) as received:
        for step, batch in batches:
            result = steps.train_step(batch)
            _append_step_metrics(metrics, step, result, batch.empty, batches.chooses_epsilon)
            if step % tr.eval_every == 0 or step == batches.total:
                metrics.test_sums.append(steps.evaluate())
                metrics.eval_steps.append(step)
            if step % FINITE_CHECK_EVERY == 0:
                _check_finite(metrics, names)
            periodic = tr.checkpoint_every and step % tr.checkpoint_every == 0
            # read once: a signal that comes during the save below stops the next step, whose
            # checkpoint then records it
            stop = received[0] if received else None
            if (periodic or stop) and step < batches.total:
                _check_finite(metrics, names)
                clock.stop_at(step)
                state.progress.stopped_by = signal.Signals(stop).name if stop else None
                state.save(checkpoint, runs)
                if stop:
                    log.warning("%s: checkpoint after step %d, stopping", ", ".join(names), step)
                    raise Stopped(stop, step)
            clock.tick(step, lambda rate, s=step: _log_progress(metrics, data, s, batches, rate))
    _check_finite(metrics, names)
    clock.stop_at(batches.total)

    pack = {
        "determinism": flags,
        "cuda_graphs": {"requested": tr.cuda_graphs, **steps.graphs_used()},
        "eval_bf16": {"requested": tr.eval_bf16, "used": use_bf16(tr.eval_bf16, chunks[0])},
        "pack": {"members": names, "dtype": str(dtype).removeprefix("torch.")},
    }
    summaries = _write_members(runs, outs, state, data, chunks, batches, pack)
    checkpoint.unlink(missing_ok=True)
    return summaries


def _losses_in_model_units(runs: list[RunSpec], data: RunData) -> list[LossSpec]:
    """The members' losses for the variances in model units (their parameters in raw label
    units divided by y_std**2 when labels are normalized: ``LossType.raw_units``), each checked
    once against its member's variances: the losses skip their per-step checks."""
    normalize = runs[0].training.normalize
    losses = [run.loss.in_model_units(data.y_std) if normalize else run.loss for run in runs]
    for loss, var in zip(losses, data.var_train, strict=True):
        loss.kind.check_variances(loss.params, var)
    return losses


@contextlib.contextmanager
def _signals_received(signums):
    """The signals of ``signums`` received while inside (a list, in order); their handlers are
    restored on exit. Signals can be handled in the main thread only: elsewhere, none."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {
        signum: signal.signal(signum, lambda n, _: received.append(n)) for signum in signums
    }
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _write_members(runs, outs, state: _State, data, chunks, batches, pack: dict) -> list[dict]:
    """Each member's files, its predictions from one evaluation of the final pack model (as
    the logged errors were computed: bf16 and the protocol too); ``pack``: what the members'
    run records share. A bf16 evaluation is checked against float32 (``run.eval_bf16``)."""
    tr = runs[0].training
    pred = predict(state.model, data, chunks, tr.eval_bf16, protocol=tr.eval_protocol)
    bf16 = [pack["eval_bf16"]] * len(runs)
    if pack["eval_bf16"]["used"]:
        fp32 = predict(state.model, data, chunks, False, protocol=tr.eval_protocol)
        checks = bf16_vs_float32(pred, fp32, data.y_test)
        bf16 = [pack["eval_bf16"] | check for check in checks]
        for run, check in zip(runs, checks, strict=True):
            if not check["within_bound"]:
                log.warning(
                    "%s: the bfloat16 evaluation's final test MSE is %.3g (relative) from "
                    "float32's, beyond the stated %g: set training.eval_bf16: false",
                    run_name(run),
                    check["final_test_mse_rel_diff_vs_float32"],
                    check["bound"],
                )
    pred = pred.double().cpu()
    if tr.normalize:
        pred = pred * data.y_std + data.y_mean
    device = data.y_test.device
    return [
        write_run_folder(
            run,
            _run_record(run, m, data, device, pack | {"eval_bf16": bf16[m]}, batches),
            out,
            pred[m],
            data,
            metrics,
            batches.per_epoch,
            state.progress,
        )
        for m, (run, out, metrics) in enumerate(zip(runs, outs, state.metrics.runs(), strict=True))
    ]


def _check_pack(runs: list[RunSpec], outs: list[Path]) -> list[str]:
    """The members' names (:func:`run_name`), once checked: the members of a pack share the
    dataset, model and training block, and are distinct."""
    if not runs or len(outs) != len(runs):
        raise ValueError(f"a pack needs one output folder per run: {len(runs)} runs, {outs}")
    first = runs[0]
    for run in runs[1:]:
        for field in ("dataset", "model", "training"):
            if getattr(run, field) != getattr(first, field):
                raise ValueError(
                    f"{run_name(run)} cannot train in a pack with {run_name(first)}: "
                    f"their {field} differs"
                )
    names = [run_name(run) for run in runs]
    if len(set(names)) < len(names) or len(set(outs)) < len(outs):
        raise ValueError(f"a pack's runs and output folders must be distinct: {names}")
    return names


def _check_batches(run: RunSpec, data: RunData) -> None:
    """The batch sizes must fit the data (checked at plan time too, for hand-written params)."""
    tr, n_train, n_test = run.training, data.y_train.shape[1], len(data.y_test)
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
    """What a checkpoint holds: model, optimizer, batch-order generators, progress, metrics."""

    model: StackedMLP | ModulePack
    cuda_graphs: bool
    optimizer: PackAdam
    generators: list[torch.Generator]
    progress: Progress
    metrics: PackMetrics

    @classmethod
    def fresh(cls, runs, data: RunData, losses, device, dtype) -> _State:
        """The state of step 0 (member m initialised as a solo run of its seed)."""
        tr, seeds = runs[0].training, [run.seed for run in runs]
        shape = tuple(data.x_train.shape[1:])
        model = build_pack_model(runs[0].model, shape, seeds, device, dtype)
        cuda_graphs = use_cuda_graphs(tr.cuda_graphs, device, model, losses)
        optimizer = PackAdam(model.stacked(), len(runs), lr=tr.lr)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        return cls(model, cuda_graphs, optimizer, generators, Progress(), PackMetrics(len(runs)))

    @classmethod
    def resume(cls, runs, data, losses, device, dtype, checkpoint: Path) -> _State:
        """The state of ``checkpoint`` if there is one, else of step 0; ``CheckpointError`` if
        the checkpoint cannot be resumed from."""
        state = cls.fresh(runs, data, losses, device, dtype)
        if checkpoint.is_file():
            state.progress, state.metrics = load_checkpoint(
                checkpoint, runs, state.model, state.optimizer, state.generators, device
            )
        return state

    @classmethod
    def start(cls, runs, data, losses, dtype, checkpoint: Path, discard: bool) -> _State:
        """:meth:`resume`; a checkpoint it cannot use raises, or with ``discard`` is logged,
        deleted, and the state is that of step 0."""
        device = data.y_test.device
        try:
            return cls.resume(runs, data, losses, device, dtype, checkpoint)
        except CheckpointError as err:
            if not discard:
                raise CheckpointError(f"{err}; delete it or use another output folder") from err
            log.warning("%s: deleted, training starts from step 0", err)
            checkpoint.unlink()
            return cls.fresh(runs, data, losses, device, dtype)

    def save(self, checkpoint: Path, runs: list[RunSpec]) -> None:
        save_checkpoint(
            checkpoint,
            runs,
            self.progress,
            self.model,
            self.optimizer,
            self.generators,
            self.metrics,
        )


class Batches:
    """The pack's steps from where the state's progress stands: (step, :class:`Batch`), steps
    counted from 1. Member m's batches are slices of a per-epoch permutation of the training set
    drawn from its generator (kept in ``progress.perm``, (P, N), for checkpoints), or sequential
    without ``shuffle`` (then the inputs (B, ...) are shared, else (P, B, ...)); labels and
    variances (P, B). What a member's loss declares (``biv.losses.LossType``) decides the rest:
    ``kept``, which of its batches are empty (skipped); ``host_variances``, a host copy of its
    variances for each batch."""

    def __init__(self, data: RunData, tr: TrainingSpec, state: _State, losses: list[LossSpec]):
        self.data, self.tr, self.generators, self.progress = (
            data,
            tr,
            state.generators,
            state.progress,
        )
        self.members, self.n_train = data.y_train.shape
        self.losses, self.first_step = losses, state.progress.step
        # the samples each member's loss keeps, on the CPU (None: no member skips a batch)
        kinds = [loss.kind for loss in losses]
        kept = [
            None if kind.kept is None else kind.kept(loss.params, var)
            for kind, loss, var in zip(kinds, losses, data.var_train, strict=True)
        ]
        self.kept = None
        if any(k is not None for k in kept):
            every = torch.ones(self.n_train, dtype=torch.bool)
            self.kept = torch.stack([every if k is None else k for k in kept])
        # the variances on the host, float64, for the losses that read them there
        host = any(kind.host_variances for kind in kinds)
        var_host = data.var_train.to("cpu", torch.float64).numpy() if host else None
        self.var_host = [var_host[m] if k.host_variances else None for m, k in enumerate(kinds)]
        self.chooses_epsilon = [kind.chooses_epsilon for kind in kinds]
        self.per_epoch = tr.steps_per_epoch(self.n_train)
        self.total = self.per_epoch * tr.epochs
        self.device = data.y_train.device

    def describe(self, device: torch.device) -> str:
        resumed = f", resuming after step {self.progress.step}" if self.progress.step else ""
        if self.progress.stopped_by:
            resumed += f" (checkpointed there on {self.progress.stopped_by})"
        return (
            f"{self.total} steps ({self.tr.epochs} epochs x {self.per_epoch}) on {device}{resumed}"
        )

    def __iter__(self):
        x, y, var, bs = (
            self.data.x_train,
            self.data.y_train,
            self.data.var_train,
            self.tr.batch_size,
        )
        shuffle, no_skips = self.tr.shuffle, np.zeros(self.members, dtype=bool)
        perm = None if self.progress.perm is None else self.progress.perm.to(self.device)
        for step in range(self.progress.step, self.total):
            batch = step % self.per_epoch
            if batch == 0 and shuffle:
                self.progress.perm = torch.stack(
                    [torch.randperm(self.n_train, generator=g) for g in self.generators]
                )
                perm = self.progress.perm.to(self.device, non_blocking=True)
            lo, hi = batch * bs, min(batch * bs + bs, self.n_train)
            if shuffle:
                index, rows = perm[:, lo:hi], self.progress.perm[:, lo:hi]
                inputs, labels, variances = x[index], y.gather(1, index), var.gather(1, index)
            else:
                rows = torch.arange(lo, hi).expand(self.members, -1)
                inputs, labels, variances = x[lo:hi], y[:, lo:hi], var[:, lo:hi]
            empty = no_skips if self.kept is None else ~self.kept.gather(1, rows).any(1).numpy()
            pairs = zip(self.var_host, rows, strict=True)
            host = [None if v is None else v[r.numpy()] for v, r in pairs]
            yield step + 1, Batch(inputs, labels, variances, empty, host)


class _Clock:
    """Wall time of the pack across resumes, and a progress log line every LOG_EVERY_S
    seconds."""

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


def _append_step_metrics(
    metrics: PackMetrics, step: int, result: StepResult, empty: np.ndarray, chooses: list[bool]
) -> None:
    """The step's losses, the members that skipped it and the epsilon of the members whose
    loss chooses one per batch (``chooses``)."""
    metrics.losses.append(result.values)
    for m in np.flatnonzero(empty):
        metrics.skipped[m].append(step)
    for m, chooses_epsilon in enumerate(chooses):
        if chooses_epsilon:
            metrics.epsilon[m].append((step, result.epsilon[m]))


def _check_finite(metrics: PackMetrics, names: list[str]) -> None:
    bad = metrics.first_nonfinite()
    if bad is not None:
        member, step, value = bad
        raise NonFiniteLossError(f"{names[member]}: training loss is {value} at step {step}")


def _run_record(
    run: RunSpec, m: int, data: RunData, device: torch.device, pack: dict, batches: Batches
) -> dict:
    """The run record (run.json) of member ``m``, written when the pack ends; ``pack``: what
    the members share (determinism, CUDA graphs, bf16, the pack's members)."""
    return {
        **plain_params(run),
        "device": {"type": device.type, "name": device_name(device)},
        "provenance": provenance(),
        "run": {
            "determinism": pack["determinism"],
            "evaluation": run.training.eval_text(),
            "loss_in_model_units": batches.losses[m].to_dict(),
            "n_train": batches.n_train,
            "n_test": len(data.y_test),
            "y_mean": data.y_mean,
            "y_std": data.y_std,
            "steps_per_epoch": batches.per_epoch,
            "total_steps": batches.total,
            "resumed_from_step": batches.first_step,
            "pack": {**pack["pack"], "member": m},
            "cuda_graphs": pack["cuda_graphs"],
            "eval_bf16": pack["eval_bf16"],
            # the image file list stays in the prepared file (UTKFace: ~1 MB of names)
            "dataset_meta": {k: v for k, v in data.meta.items() if k != "files"},
            "noise_meta": data.noise_meta[m],
        },
    }


def _log_progress(
    metrics: PackMetrics, data: RunData, step: int, batches: Batches, rate: float
) -> None:
    tr = batches.tr
    test = "n/a"
    if metrics.test_sums:
        mse = metrics.test_sums[-1][:, 0] / len(data.y_test)
        test = _spread(mse if tr.normalize else mse / data.y_std**2)
    log.info(
        "epoch %d/%d step %d/%d loss %s test_mse %s skipped %d | %.1f steps/s, %s left",
        (step - 1) // batches.per_epoch + 1,
        tr.epochs,
        step,
        batches.total,
        _spread(metrics.losses[-1]),
        test,
        sum(len(s) for s in metrics.skipped),
        rate,
        _format_duration((batches.total - step) / rate),
    )


def _spread(values: torch.Tensor) -> str:
    """A member's value, or the members' range."""
    low, high = float(values.min()), float(values.max())
    return f"{low:.5g}" if len(values) == 1 else f"{low:.5g}..{high:.5g}"


def write_run_folder(
    run: RunSpec,
    record: dict,
    out: Path,
    pred: torch.Tensor,
    data: RunData,
    metrics: RunMetrics,
    steps_per_epoch: int,
    progress: Progress,
) -> dict:
    """Write the run's files: ``record`` as run.json, ``pred`` (its final test predictions, raw
    units, float64 on the CPU) as predictions.csv; ``progress``: the pack's."""
    normalize = run.training.normalize
    total = progress.step
    tr, n_test = run.training, len(data.y_test)
    weights = eval_weights(n_test, tr.eval_protocol, tr.eval_batch_size)
    errors = eval_errors(metrics, n_test, data.y_std, normalize, data.var_test, weights)
    atomic.write_text(out / "metrics.csv", metrics_csv(metrics, errors, total, steps_per_epoch))
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
        # of the pack the run trained in, with pack_size - 1 other runs
        "wall_time_s": wall,
        "steps_per_s": total / wall if wall > 0 else None,
        "pack_size": len(record["run"]["pack"]["members"]),
    }
    atomic.write_json(out / "summary.json", summary)
    atomic.write_json(out / "run.json", record)
    atomic.write_json(out / "params.json", plain_params(run))
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
    logged: 0 on success, 2 for bad input (an unusable checkpoint too), 1 for a non-finite loss
    or GPUs given that CUDA cannot use, 128 + the signal's number when stopped by one."""
    try:
        train(run, out_dir)
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    except (NonFiniteLossError, GpuUnavailableError) as err:
        log.error("%s", err)
        return 1
    except Stopped as err:
        log.error("%s", err)
        return 128 + err.signum
    return 0
