"""The training step and the test evaluation of a pack: plain, or replayed as CUDA graphs.

A step trains the P members at once (:meth:`Steps.train_step`, one body): the pack model's forward
pass, each member's loss on its own :class:`Batch` (the ``compute`` of its registered loss type,
``biv.losses``), the backward pass of their sum (members share no parameter, so each gets its own
gradient; a :class:`biv.train.pack_model.ModulePack` runs it member by member) and one
:class:`biv.train.optim.PackAdam` update of the members whose batch is not empty.

A Bike step on a GPU is about 60 tiny kernels, each launched from Python: launch-bound. With
``cuda_graphs`` (CUDA, an MLP, no loss with host-side work), the step (forward, losses,
backward, Adam) is captured once per batch shape and the test evaluation once, then replayed
with one launch each; only the batch and the mask of active members are copied into the
graph's input buffers. The losses are called inside ``biv.losses.trusted_variances`` and
:class:`biv.train.optim.PackAdam` reads nothing back to the host. Each capture is checked once
against the plain computation from the same state (``VERIFY_RTOL``/``VERIFY_ATOL``). If a
capture fails or its replay differs beyond float32 round-off, a warning is logged and that part (the
training step or the evaluation) goes on plain from the same state; the run record says which part,
and why. A failed capture leaves no trace in the caching allocator (:func:`_capture`). The CPU path
is the plain step, unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from biv.config import LossSpec
from biv.losses import trusted_variances
from biv.train.evaluation import EvalData, evaluate
from biv.train.optim import PackAdam
from biv.train.pack_model import ModulePack, StackedMLP

log = logging.getLogger("biv.train.step")

#: Eager steps run on the capture stream before each capture (as the PyTorch CUDA-graph docs).
WARMUP_STEPS = 3
#: A replayed step may differ from the plain one by float32 round-off only: the same kernels run.
VERIFY_RTOL, VERIFY_ATOL = 1e-5, 1e-7

PackModel = StackedMLP | ModulePack


class Batch(NamedTuple):
    """One step's batches of the P members. ``inputs``: (B, ...) shared by the members or
    (P, B, ...), before ``data.inputs``; ``labels`` and ``variances``: (P, B), model units;
    ``empty``: (P,) host booleans, member m's loss keeps no sample of its batch
    (``LossType.kept``): it runs the forward pass only (BatchNorm statistics) and is skipped;
    ``host_variances[m]``: member m's variances as float64 on the host where its loss reads them
    (``LossType.host_variances``), else None."""

    inputs: Tensor
    labels: Tensor
    variances: Tensor
    empty: np.ndarray
    host_variances: Sequence[np.ndarray | None]


class StepResult(NamedTuple):
    """The members' training losses (P,), detached, 0 where skipped; the epsilon each loss
    used (None where it has none, or in a replayed graph)."""

    values: Tensor
    epsilon: list[float | None]


def use_cuda_graphs(
    enabled: bool, device: torch.device, model: PackModel, losses: Sequence[LossSpec]
) -> bool:
    """Whether the pack's step is captured: asked for, on CUDA, an MLP, and no member whose loss
    works on the host at every step (``LossType.host_variances``: biv_adaptive's epsilon)."""
    return (
        enabled
        and device.type == "cuda"
        and isinstance(model, StackedMLP)
        and not any(loss.kind.host_variances for loss in losses)
    )


class Steps:
    """The plain step: forward, the members' losses, backward and the update of the members
    whose batch is not empty. ``losses``: the members' losses, in model units."""

    def __init__(
        self,
        model: PackModel,
        optimizer: PackAdam,
        losses: Sequence[LossSpec],
        data: EvalData,
        chunks: list[Tensor],
        eval_bf16: bool,
        eval_protocol: str,
        test_batch: int,
    ):
        self.model, self.optimizer, self.losses = model, optimizer, list(losses)
        self.data, self.chunks, self.eval_bf16 = data, chunks, eval_bf16
        self.eval_protocol, self.test_batch = eval_protocol, test_batch
        device = data.y_test.device
        self.all_active = torch.ones(len(self.losses), dtype=torch.bool, device=device)

    def active(self, empty: np.ndarray) -> Tensor:
        """The device mask of the members that train at this step (``empty``: host booleans)."""
        if not empty.any():
            return self.all_active
        return torch.from_numpy(~empty).to(self.all_active.device, non_blocking=True)

    def train_step(self, batch: Batch, active: Tensor | None = None) -> StepResult:
        """One step: the forward pass, each member's loss on its batch (0 where not active),
        the backward pass and the update of the active members. ``active``: their device mask;
        by default from ``batch.empty``, and when every batch is empty, only the forward pass
        runs. A CUDA graph captures the step with ``active`` given (an input buffer)."""
        every = active is None and not batch.empty.any()  # known on the host: no mask needed
        if active is None:
            active, train = self.active(batch.empty), not batch.empty.all()
        else:
            train = True
        for p in self.model.parameters():
            p.grad = None
        values, epsilon = [], []
        # forward (a ModulePack's member by member, each after the previous one's backward)
        predictions = self.model.predictions(batch.inputs, self.data.inputs)
        for m, (pred, loss) in enumerate(zip(predictions, self.losses, strict=True)):
            with trusted_variances():
                result = loss.kind.compute(
                    pred, batch.labels[m], batch.variances[m], loss.params, batch.host_variances[m]
                )
            value = result.value if every else result.value.where(active[m], 0.0)
            if train and self.model.backward_per_member:
                value.backward()
            values.append(value)
            epsilon.append(result.epsilon)
        values = torch.stack(values)
        if train and not self.model.backward_per_member:  # one backward pass of the pack
            values.sum().backward()
        if train:  # the update of the active members
            self.optimizer.step(self.model.gradients(), None if every else active)
        return StepResult(values.detach(), epsilon)

    def evaluate(self) -> Tensor:
        """(P, 2): the members' sums of squared and of absolute errors on the test set, float64,
        on the device, in the run's protocol (``biv.train.evaluation.evaluate``)."""
        return evaluate(
            self.model,
            self.data,
            self.chunks,
            bf16=self.eval_bf16,
            protocol=self.eval_protocol,
            test_batch=self.test_batch,
        )

    def graphs_used(self) -> dict:
        """What ran, for the run record: CUDA graphs of the training step and of the evaluation,
        and if they were given up, why."""
        return {"used": False, "fallback": None, "evaluation": {"used": False, "fallback": None}}


class GraphedSteps(Steps):
    """:class:`Steps` replayed as CUDA graphs: one per batch shape (the last batch of an epoch
    may be shorter), one for the evaluation; the mask of active members is an input. Each
    capture runs ``WARMUP_STEPS`` real steps (or evaluations) first; the parameters, buffers and
    optimizer state are restored afterwards, so the run's trajectory does not depend on when
    captures happen. The training step and the evaluation fall back independently."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fallback: str | None = None  # why the plain training step is used, once it is
        self.eval_fallback: str | None = None  # why the plain evaluation is used, once it is
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, tuple[Tensor, ...], Tensor]] = {}
        self.eval_graph: tuple[torch.cuda.CUDAGraph, Tensor] | None = None

    def train_step(self, batch: Batch, active: Tensor | None = None) -> StepResult:
        if self.failed or active is not None:
            return super().train_step(batch, active)
        active = self.active(batch.empty)
        inputs = (batch.inputs, batch.labels, batch.variances, active)
        captured = self.graphs.get(tuple(batch.inputs.shape))
        if captured is None:
            captured = self._capture_step(*inputs)
            if captured is None:
                return super().train_step(batch)
            self.graphs[tuple(batch.inputs.shape)] = captured
        graph, static, values = captured
        for buffer, value in zip(static, inputs, strict=True):
            buffer.copy_(value)
        graph.replay()
        return StepResult(values.clone(), [None] * len(self.losses))

    def evaluate(self) -> Tensor:
        if self.eval_graph is None and self.eval_fallback is None:
            self.eval_graph = self._capture_eval()
        if self.eval_graph is None:
            return super().evaluate()
        graph, sums = self.eval_graph
        graph.replay()
        return sums.clone()

    @property
    def failed(self) -> bool:
        """Whether the run has given the training graphs up for the plain step."""
        return self.fallback is not None

    def graphs_used(self) -> dict:
        return {
            "used": not self.failed,
            "fallback": self.fallback,
            "evaluation": {"used": self.eval_fallback is None, "fallback": self.eval_fallback},
        }

    def _masked_step(self, xb: Tensor, yb: Tensor, vb: Tensor, active: Tensor) -> Tensor:
        """The step with the mask on the device (no host decision): what is captured."""
        no_host = [None] * len(self.losses)  # no loss of a captured pack works on the host
        batch = Batch(xb, yb, vb, np.zeros(len(self.losses), dtype=bool), no_host)
        return Steps.train_step(self, batch, active).values

    def _state_tensors(self) -> list[Tensor]:
        optimizer = self.optimizer.state_dict()
        return [
            *self.model.stacked(),
            *self.model.buffers(),
            optimizer["steps"],
            *optimizer["exp_avg"],
            *optimizer["exp_avg_sq"],
        ]

    def _capture_step(self, xb: Tensor, yb: Tensor, vb: Tensor, active: Tensor):
        """Capture the step for batches of ``xb``'s shape and check one replay against the
        plain step; None (and plain steps from now on) if either fails. The model and optimizer
        state are the same afterwards as before."""
        what = f"training step (batch of {yb.shape[1]})"
        tensors = self._state_tensors()
        saved = [t.detach().clone() for t in tensors]
        static = tuple(t.clone() for t in (xb, yb, vb, active))

        def restore() -> None:
            for p in self.model.parameters():
                p.grad = None
            with torch.no_grad():
                for tensor, value in zip(tensors, saved, strict=True):
                    tensor.copy_(value)

        try:
            graph, values = _warm_up_and_capture(lambda: self._masked_step(*static))
            restore()
            values.fill_(float("nan"))  # a replay that writes nothing cannot pass for one
            graph.replay()
            replayed = [values.clone(), *(t.detach().clone() for t in tensors)]
            restore()
            plain = [self._masked_step(*static), *tensors]
            differs = _difference(replayed, plain)
        except Exception as err:  # any failure: fall back, never stop the run
            differs = f"capture failed: {err!r}"
        finally:
            restore()
        if differs is not None:
            self.fallback = _give_up(what, differs)
            return None
        return graph, static, values

    def _capture_eval(self):
        """Capture the evaluation and check one replay against the plain evaluation; None (and
        plain evaluations from now on) if either fails. Evaluating changes no state."""
        try:
            graph, sums = _warm_up_and_capture(super().evaluate)
            with torch.inference_mode():  # sums is an inference tensor
                sums.fill_(float("nan"))  # a replay that writes nothing cannot pass for one
            graph.replay()
            differs = _difference([sums.clone()], [super().evaluate()])
        except Exception as err:  # any failure: fall back, never stop the run
            differs = f"capture failed: {err!r}"
        if differs is not None:
            self.eval_fallback = _give_up("evaluation", differs)
            return None
        return graph, sums


def _give_up(what: str, why: str) -> str:
    """Log that a CUDA graph is not used; returns the reason, for the run record."""
    reason = f"CUDA graph of the {what}: {why}"
    log.warning("%s; using the plain computation", reason)
    return reason


def _warm_up_and_capture(fn: Callable[[], Tensor]) -> tuple[torch.cuda.CUDAGraph, Tensor]:
    """Run ``fn`` ``WARMUP_STEPS`` times on a side stream, then capture it there (as the
    PyTorch CUDA-graph docs). Whether this succeeds or raises, the caller's stream is current
    again afterwards and waits for the side stream's work."""
    main = torch.cuda.current_stream()
    side = torch.cuda.Stream()
    side.wait_stream(main)
    try:
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                fn()
            return _capture(fn)
    finally:
        main.wait_stream(side)


def _capture(fn: Callable[[], Tensor]) -> tuple[torch.cuda.CUDAGraph, Tensor]:
    """Capture ``fn`` on the current stream into a new graph with a memory pool of its own.

    What ``torch.cuda.graph`` does, except that a failure leaves the caching allocator as it
    was: when ``cudaStreamEndCapture`` fails (a host sync in the body invalidates the capture),
    ``CUDAGraph.capture_end`` raises before it stops routing allocations to the pool, and a
    graph frees its pool only if its capture ended; the rest of the process would run with a
    capture underway in the allocator (which then never reuses a freed block that had stream
    uses). A failure in ``fn`` is the error raised, not the capture's end that follows it."""
    torch.cuda.synchronize()
    pool = torch.cuda.graph_pool_handle()
    graph = torch.cuda.CUDAGraph()
    try:
        graph.capture_begin(pool=pool)
        try:
            out = fn()
        except Exception:
            with contextlib.suppress(Exception):
                graph.capture_end()
            raise
        graph.capture_end()
    except Exception:
        _free_failed_capture(graph, pool)
        raise
    return graph, out


def _free_failed_capture(graph: torch.cuda.CUDAGraph, pool) -> None:
    """After a failed capture whose graph does not own ``pool`` (its capture never ended): stop
    routing allocations to the pool and let the allocator free it. Each call may find its work
    done (capture_end failed after it) or the pool never made (capture_begin failed): ignored."""
    try:
        graph.pool()  # raises unless the capture ended: then the graph frees the pool
        return
    except RuntimeError:
        pass
    device = torch.cuda.current_device()
    # torch < 2.8 names the first call _cuda_endAllocateCurrentStreamToPool
    end = getattr(torch._C, "_cuda_endAllocateToPool", None)
    end = end or torch._C._cuda_endAllocateCurrentStreamToPool
    with contextlib.suppress(Exception):
        end(device, pool)
    with contextlib.suppress(Exception):
        torch._C._cuda_releasePool(device, pool)


def _difference(got: list[Tensor], expected: list[Tensor]) -> str | None:
    """None if every tensor of ``got`` is close to its ``expected`` one (float32 round-off),
    else which one differs and by how much."""
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        if not torch.allclose(a, b, rtol=VERIFY_RTOL, atol=VERIFY_ATOL):
            diff = float((a - b).abs().max())
            return f"a replay differs from the plain computation (tensor {i}: max abs {diff:.3g})"
    return None


def make_steps(
    model: PackModel,
    optimizer: PackAdam,
    losses: Sequence[LossSpec],
    data: EvalData,
    chunks: list[Tensor],
    *,
    cuda_graphs: bool,
    eval_bf16: bool,
    eval_protocol: str,
    test_batch: int,
) -> Steps:
    """The pack's steps: :class:`GraphedSteps` when ``cuda_graphs`` (see
    :func:`use_cuda_graphs`), else :class:`Steps`. ``chunks``: the test inputs in the pieces the
    model runs on (``biv.train.evaluation.passes``); ``test_batch``: the protocol's test batch
    size."""
    cls = GraphedSteps if cuda_graphs else Steps
    return cls(model, optimizer, losses, data, chunks, eval_bf16, eval_protocol, test_batch)
