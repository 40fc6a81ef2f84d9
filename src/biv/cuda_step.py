"""The training step and the test evaluation of a run: plain, or replayed as CUDA graphs.

A Bike step on a GPU is about 60 tiny kernels, each launched from Python: launch-bound. With
``cuda_graphs`` (CUDA, an MLP, a loss without host-side work), the step (forward, loss,
backward, Adam) is captured once per batch length and the test evaluation once, then replayed
with one launch each; only the batch is copied into the graph's input buffers. This needs an
optimizer built with ``capturable=True`` (``biv.optim.Adam``) and a loss called inside
``biv.losses.trusted_variances`` (no host synchronisation). If a capture fails, a warning is
logged and the run goes on with the plain step from the same state. Each training capture is
checked once against the plain step from the same state (``VERIFY_RTOL``/``VERIFY_ATOL``), and a
graph that differs beyond float32 round-off is not used either; ``fallback`` says why, for the
run record. The CPU path is the plain step, unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from biv.evaluation import EvalData, evaluate
from biv.losses import LossResult, trusted_variances
from biv.models import MLP

log = logging.getLogger("biv.cuda_step")

#: Eager steps run on the capture stream before each capture (as the PyTorch CUDA-graph docs).
WARMUP_STEPS = 3
#: A replayed step may differ from the plain one by float32 round-off only: the same kernels run,
#: but captured Adam reads its step count from the device.
VERIFY_RTOL, VERIFY_ATOL = 1e-5, 1e-7
SKIPPED = LossResult(None, None)

LossFn = Callable[[Tensor, Tensor, Tensor], LossResult]


def use_cuda_graphs(enabled: bool, device: torch.device, model: nn.Module, loss_type: str) -> bool:
    """Whether the run's step is captured: asked for, on CUDA, an MLP, and not ``biv_adaptive``
    (its epsilon is chosen on the host at every step). Decide before building the optimizer:
    a captured step needs ``capturable=True``."""
    return (
        enabled and device.type == "cuda" and isinstance(model, MLP) and loss_type != "biv_adaptive"
    )


class Steps:
    """The plain step: forward, then (unless the batch is empty) loss, backward, Adam."""

    def __init__(
        self,
        model: nn.Module,
        optimizer,
        loss_fn: LossFn,
        data: EvalData,
        chunks: list[Tensor],
        eval_bf16: bool,
        eval_protocol: str = "standard",
    ):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.data, self.chunks, self.eval_bf16 = data, chunks, eval_bf16
        self.eval_protocol = eval_protocol

    def train_step(
        self, xb: Tensor, yb: Tensor, vb: Tensor, empty: bool, vb_host: np.ndarray | None = None
    ) -> LossResult:
        """One step on a batch (model inputs before ``data.inputs``). ``empty``: no sample is
        kept by the loss (``biv.losses.cutoff_kept``), so the step only runs the forward pass
        (BatchNorm statistics) and is skipped. ``vb_host``: the batch's variances on the host,
        for ``biv_adaptive``'s epsilon search. Returns the detached loss, or ``SKIPPED``."""
        pred = self.model(self.data.inputs(xb)).squeeze(1)
        if empty:
            return SKIPPED
        with trusted_variances():
            host = () if vb_host is None else (vb_host,)
            result = self.loss_fn(pred, yb, vb, *host)
        if result.value is None:
            return SKIPPED
        self.optimizer.zero_grad(set_to_none=True)
        result.value.backward()
        self.optimizer.step()
        return LossResult(result.value.detach(), result.epsilon)

    def evaluate(self) -> Tensor:
        """(sum of squared, sum of absolute errors) on the test set, float64, on the device, in
        the run's protocol (``biv.evaluation.evaluate``)."""
        return evaluate(
            self.model, self.data, self.chunks, bf16=self.eval_bf16, protocol=self.eval_protocol
        )

    def record(self) -> dict:
        """What ran, for the run record: CUDA graphs, and if they were given up, why."""
        return {"used": False, "fallback": None}


class GraphedSteps(Steps):
    """:class:`Steps` replayed as CUDA graphs: one per batch length (the last batch of an epoch
    may be shorter), one for the evaluation. Each training capture runs ``WARMUP_STEPS`` real
    steps first; the parameters, buffers and optimizer state are restored afterwards, so the
    run's trajectory does not depend on when captures happen."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fallback: str | None = None  # why the plain step is used, once it is
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, tuple[Tensor, ...], Tensor]] = {}
        self.eval_graph: tuple[torch.cuda.CUDAGraph, Tensor] | None = None

    def train_step(
        self, xb: Tensor, yb: Tensor, vb: Tensor, empty: bool, vb_host: np.ndarray | None = None
    ) -> LossResult:
        if self.failed or empty:
            return super().train_step(xb, yb, vb, empty, vb_host)
        captured = self.graphs.get(len(yb))
        if captured is None:
            captured = self._capture(xb, yb, vb)
            if captured is None:
                return super().train_step(xb, yb, vb, empty)
            self.graphs[len(yb)] = captured
        graph, static, loss = captured
        for buffer, value in zip(static, (xb, yb, vb), strict=True):
            buffer.copy_(value)
        graph.replay()
        return LossResult(loss.clone(), None)

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

    def _update(self, xb: Tensor, yb: Tensor, vb: Tensor) -> Tensor:
        with trusted_variances():
            loss = self.loss_fn(self.model(self.data.inputs(xb)).squeeze(1), yb, vb).value
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _state_tensors(self) -> list[Tensor]:
        self.optimizer.init_state()
        optimizer_state = self.optimizer.state_dict()["state"].values()
        return [
            *self.model.parameters(),
            *self.model.buffers(),
            *(t for state in optimizer_state for t in state.values()),
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

    def _capture(self, xb: Tensor, yb: Tensor, vb: Tensor):
        """Capture the step for batches of ``len(yb)`` and check one replay against the plain
        step; None (and plain steps from now on) if either fails. The model and optimizer state
        are the same afterwards as before."""
        what = f"training step (batch of {len(yb)})"
        tensors = self._state_tensors()
        saved = [t.detach().clone() for t in tensors]
        static = tuple(t.clone() for t in (xb, yb, vb))

        def restore() -> None:
            self.optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                for tensor, value in zip(tensors, saved, strict=True):
                    tensor.copy_(value)

        try:
            graph, loss = self._record(lambda: self._update(*static), WARMUP_STEPS)
            restore()
            graph.replay()
            replayed = [loss.clone(), *(t.detach().clone() for t in tensors)]
            restore()
            plain = [self._update(*static), *tensors]
            differs = _difference(replayed, plain)
        except Exception as err:  # any failure: fall back, never stop the run
            self._fail(what, f"capture failed: {err!r}")
            return None
        finally:
            restore()
        if differs is not None:
            self._fail(what, f"a replay differs from the plain step ({differs})")
            return None
        return graph, static, loss

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
    model: nn.Module,
    optimizer,
    loss_fn: LossFn,
    data: EvalData,
    chunks: list[Tensor],
    *,
    cuda_graphs: bool,
    eval_bf16: bool,
    eval_protocol: str = "standard",
) -> Steps:
    """The run's steps: :class:`GraphedSteps` when ``cuda_graphs`` (see
    :func:`use_cuda_graphs`), else :class:`Steps`."""
    cls = GraphedSteps if cuda_graphs else Steps
    return cls(model, optimizer, loss_fn, data, chunks, eval_bf16, eval_protocol)
