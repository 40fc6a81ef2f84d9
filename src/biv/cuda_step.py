"""The training step and the test evaluation of a run: plain, or replayed as CUDA graphs.

A Bike step on a GPU is about 60 tiny kernels, each launched from Python: launch-bound. With
``cuda_graphs`` (CUDA, an MLP, a loss without host-side work), the step (forward, loss,
backward, Adam) is captured once per batch length and the test evaluation once, then replayed
with one launch each; only the batch is copied into the graph's input buffers. This needs an
optimizer built with ``capturable=True`` (``biv.optim.Adam``) and a loss called inside
``biv.losses.trusted_variances`` (no host synchronisation). If a capture fails, a warning is
logged and the run goes on with the plain step from the same state. The CPU path is the plain
step, unchanged.
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
        return evaluate(self.model, self.data, self.chunks, self.eval_bf16, self.eval_protocol)


class GraphedSteps(Steps):
    """:class:`Steps` replayed as CUDA graphs: one per batch length (the last batch of an epoch
    may be shorter), one for the evaluation. Each training capture runs ``WARMUP_STEPS`` real
    steps first; the parameters, buffers and optimizer state are restored afterwards, so the
    run's trajectory does not depend on when captures happen."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed = False
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

    def _fail(self, what: str, err: Exception) -> None:
        self.failed = True
        log.warning("CUDA graph capture of the %s failed, using the plain step: %r", what, err)

    def _capture(self, xb: Tensor, yb: Tensor, vb: Tensor):
        """Capture the step for batches of ``len(yb)``; None (and plain steps from now on) if
        that fails. The model and optimizer state are the same afterwards as before."""
        tensors = self._state_tensors()
        saved = [t.detach().clone() for t in tensors]
        static = tuple(t.clone() for t in (xb, yb, vb))
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(WARMUP_STEPS):
                    self._update(*static)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                loss = self._update(*static)
            torch.cuda.current_stream().wait_stream(stream)
        except Exception as err:  # any failure: fall back, never stop the run
            self._fail(f"training step (batch of {len(yb)})", err)
            return None
        finally:
            self.optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                for tensor, value in zip(tensors, saved, strict=True):
                    tensor.copy_(value)
        return graph, static, loss

    def _capture_eval(self):
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                super().evaluate()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                sums = super().evaluate()
            torch.cuda.current_stream().wait_stream(stream)
        except Exception as err:  # any failure: fall back, never stop the run
            self._fail("evaluation", err)
            return None
        return graph, sums


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
