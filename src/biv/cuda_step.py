"""The training step and the test evaluation of a pack: plain, or replayed as CUDA graphs.

A step trains the P members at once: the pack model's forward pass, each member's loss on its
own batch, one backward pass of their sum (members share no parameter, so each gets its own
gradient) and one :class:`biv.optim.PackAdam` update of the members whose batch is not empty.

A Bike step on a GPU is about 60 tiny kernels, each launched from Python: launch-bound. With
``cuda_graphs`` (CUDA, an MLP, no loss with host-side work), the step (forward, losses,
backward, Adam) is captured once per batch shape and the test evaluation once, then replayed
with one launch each; only the batch and the mask of active members are copied into the
graph's input buffers. The losses are called inside ``biv.losses.trusted_variances`` and
:class:`biv.optim.PackAdam` reads nothing back to the host. If a capture fails, a warning is
logged and the run goes on with the plain step from the same state. Each training capture is
checked once against the plain step from the same state (``VERIFY_RTOL``/``VERIFY_ATOL``), and a
graph that differs beyond float32 round-off is not used either; ``fallback`` says why, for the
run record. The CPU path is the plain step, unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from biv.evaluation import EvalData, evaluate
from biv.losses import LossResult, trusted_variances
from biv.optim import PackAdam
from biv.pack_model import ModulePack, StackedMLP

log = logging.getLogger("biv.cuda_step")

#: Eager steps run on the capture stream before each capture (as the PyTorch CUDA-graph docs).
WARMUP_STEPS = 3
#: A replayed step may differ from the plain one by float32 round-off only: the same kernels run.
VERIFY_RTOL, VERIFY_ATOL = 1e-5, 1e-7

LossFn = Callable[..., LossResult]
PackModel = StackedMLP | ModulePack


class StepResult(NamedTuple):
    """The members' training losses (P,), detached, 0 where skipped; the epsilon each loss
    used (None where it has none, or in a replayed graph)."""

    values: Tensor
    epsilon: list[float | None]


def use_cuda_graphs(
    enabled: bool, device: torch.device, model: PackModel, loss_types: Sequence[str]
) -> bool:
    """Whether the pack's step is captured: asked for, on CUDA, an MLP, and no ``biv_adaptive``
    member (its epsilon is chosen on the host at every step)."""
    return (
        enabled
        and device.type == "cuda"
        and isinstance(model, StackedMLP)
        and "biv_adaptive" not in loss_types
    )


class Steps:
    """The plain step: forward, the members' losses, backward and the update of the members
    whose batch is not empty."""

    def __init__(
        self,
        model: PackModel,
        optimizer: PackAdam,
        loss_fns: Sequence[LossFn],
        data: EvalData,
        chunks: list[Tensor],
        eval_bf16: bool,
        eval_protocol: str = "standard",
    ):
        self.model, self.optimizer, self.loss_fns = model, optimizer, list(loss_fns)
        self.data, self.chunks, self.eval_bf16 = data, chunks, eval_bf16
        self.eval_protocol = eval_protocol
        device = data.y_test.device
        self.all_active = torch.ones(len(self.loss_fns), dtype=torch.bool, device=device)

    def active(self, empty: np.ndarray) -> Tensor:
        """The device mask of the members that train at this step (``empty``: host booleans)."""
        if not empty.any():
            return self.all_active
        return torch.from_numpy(~empty).to(self.all_active.device, non_blocking=True)

    def train_step(
        self,
        xb: Tensor,
        yb: Tensor,
        vb: Tensor,
        empty: np.ndarray,
        vb_host: Sequence[np.ndarray | None],
    ) -> StepResult:
        """One step on a batch: inputs (B, ...) shared by the members or (P, B, ...) (before
        ``data.inputs``), labels and variances (P, B). ``empty[m]``: member m's loss keeps no
        sample of its batch (``biv.losses.cutoff_kept``): it runs the forward pass only
        (BatchNorm statistics) and is skipped. ``vb_host[m]``: member m's variances on the
        host, for ``biv_adaptive``'s epsilon search."""
        active = self.active(empty)
        train = not empty.all()
        values, epsilon = self._losses(xb, yb, vb, active, vb_host, backward=train)
        if train:
            self.optimizer.step(self.model.gradients(), active)
        return StepResult(values, epsilon)

    def _losses(self, xb, yb, vb, active: Tensor, vb_host=None, backward: bool = True):
        """The members' losses (P,), detached, 0 where not ``active``, and their epsilons; with
        ``backward``, the parameters' gradients of them (the model's ``losses``)."""
        for p in self.model.parameters():
            p.grad = None
        epsilon = []

        def loss(pred: Tensor, m: int) -> Tensor:
            host = () if vb_host is None or vb_host[m] is None else (vb_host[m],)
            with trusted_variances():
                result = self.loss_fns[m](pred, yb[m], vb[m], *host)
            epsilon.append(result.epsilon)
            return result.value.where(active[m], 0.0)

        values = self.model.losses(xb, self.data.inputs, loss, backward)
        return values, epsilon

    def evaluate(self) -> Tensor:
        """(P, 2): the members' sums of squared and of absolute errors on the test set, float64,
        on the device, in the run's protocol (``biv.evaluation.evaluate``)."""
        return evaluate(
            self.model, self.data, self.chunks, bf16=self.eval_bf16, protocol=self.eval_protocol
        )

    def record(self) -> dict:
        """What ran, for the run record: CUDA graphs, and if they were given up, why."""
        return {"used": False, "fallback": None}


class GraphedSteps(Steps):
    """:class:`Steps` replayed as CUDA graphs: one per batch shape (the last batch of an epoch
    may be shorter), one for the evaluation; the mask of active members is an input. Each
    training capture runs ``WARMUP_STEPS`` real steps first; the parameters, buffers and
    optimizer state are restored afterwards, so the run's trajectory does not depend on when
    captures happen."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fallback: str | None = None  # why the plain step is used, once it is
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, tuple[Tensor, ...], Tensor]] = {}
        self.eval_graph: tuple[torch.cuda.CUDAGraph, Tensor] | None = None

    def train_step(self, xb, yb, vb, empty: np.ndarray, vb_host) -> StepResult:
        if self.failed:
            return super().train_step(xb, yb, vb, empty, vb_host)
        active = self.active(empty)
        captured = self.graphs.get(tuple(xb.shape))
        if captured is None:
            captured = self._capture(xb, yb, vb, active)
            if captured is None:
                return super().train_step(xb, yb, vb, empty, vb_host)
            self.graphs[tuple(xb.shape)] = captured
        graph, static, values = captured
        for buffer, value in zip(static, (xb, yb, vb, active), strict=True):
            buffer.copy_(value)
        graph.replay()
        return StepResult(values.clone(), [None] * len(self.loss_fns))

    def evaluate(self) -> Tensor:
        if self.eval_graph is None and not self.failed:
            self.eval_graph = self._capture_eval()
        if self.eval_graph is None:
            return super().evaluate()
        graph, sums = self.eval_graph
        graph.replay()
        return sums.clone()

    @property
    def failed(self) -> bool:
        """Whether the run has given the graphs up for the plain step."""
        return self.fallback is not None

    def record(self) -> dict:
        return {"used": not self.failed, "fallback": self.fallback}

    def _masked_step(self, xb: Tensor, yb: Tensor, vb: Tensor, active: Tensor) -> Tensor:
        """The step with the mask on the device (no host decision): what is captured."""
        values, _ = self._losses(xb, yb, vb, active)
        self.optimizer.step(self.model.gradients(), active)
        return values

    def _state_tensors(self) -> list[Tensor]:
        optimizer = self.optimizer.state_dict()
        return [
            *self.model.stacked(),
            *self.model.buffers(),
            optimizer["steps"],
            *optimizer["exp_avg"],
            *optimizer["exp_avg_sq"],
        ]

    def _fail(self, what: str, why: str) -> None:
        self.fallback = f"CUDA graph of the {what}: {why}"
        log.warning("%s; using the plain step", self.fallback)

    @staticmethod
    def _record(fn: Callable[[], Tensor], warmup: int) -> tuple[torch.cuda.CUDAGraph, Tensor]:
        """Run ``fn`` ``warmup`` times on a side stream, then capture it. Whether this succeeds
        or raises, the caller's stream is current again afterwards and waits for the side
        stream's work (a failing ``capture_end`` leaves torch's stream context unexited)."""
        main = torch.cuda.current_stream()
        side = torch.cuda.Stream()
        side.wait_stream(main)
        try:
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    fn()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=side):
                out = fn()
        finally:
            torch.cuda.set_stream(main)
            main.wait_stream(side)
        return graph, out

    def _capture(self, xb: Tensor, yb: Tensor, vb: Tensor, active: Tensor):
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
            graph, values = self._record(lambda: self._masked_step(*static), WARMUP_STEPS)
            restore()
            graph.replay()
            replayed = [values.clone(), *(t.detach().clone() for t in tensors)]
            restore()
            plain = [self._masked_step(*static), *tensors]
            differs = _difference(replayed, plain)
        except Exception as err:  # any failure: fall back, never stop the run
            self._fail(what, f"capture failed: {err!r}")
            return None
        finally:
            restore()
        if differs is not None:
            self._fail(what, f"a replay differs from the plain step ({differs})")
            return None
        return graph, static, values

    def _capture_eval(self):
        try:
            return self._record(super().evaluate, 1)
        except Exception as err:  # any failure: fall back, never stop the run
            self._fail("evaluation", f"capture failed: {err!r}")
            return None


def _difference(got: list[Tensor], expected: list[Tensor]) -> str | None:
    """None if every tensor of ``got`` is close to its ``expected`` one (float32 round-off),
    else which one differs and by how much."""
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        if not torch.allclose(a, b, rtol=VERIFY_RTOL, atol=VERIFY_ATOL):
            return f"tensor {i}: max abs difference {float((a - b).abs().max()):.3g}"
    return None


def make_steps(
    model: PackModel,
    optimizer: PackAdam,
    loss_fns: Sequence[LossFn],
    data: EvalData,
    chunks: list[Tensor],
    *,
    cuda_graphs: bool,
    eval_bf16: bool,
    eval_protocol: str = "standard",
) -> Steps:
    """The pack's steps: :class:`GraphedSteps` when ``cuda_graphs`` (see
    :func:`use_cuda_graphs`), else :class:`Steps`."""
    cls = GraphedSteps if cuda_graphs else Steps
    return cls(model, optimizer, loss_fns, data, chunks, eval_bf16, eval_protocol)
