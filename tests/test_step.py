"""biv.train.step: which runs are captured as CUDA graphs, the plain step, and the fallback to it
when a capture fails (CPU); the graphs themselves only where a GPU is present."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import NamedTuple

import numpy as np
import pytest
import torch

from biv.config import LossSpec
from biv.config.model import ModelSpec
from biv.losses import LossType, cutoff
from biv.train import step
from biv.train.optim import PackAdam
from biv.train.pack_model import build_pack_model
from biv.train.step import Batch, GraphedSteps, Steps, make_steps, use_cuda_graphs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CUTOFF = LossSpec.from_config("loss", {"type": "cutoff", "threshold": 1.0})
MSE = LossSpec.from_config("loss", {"type": "mse"})
#: The evaluation protocol of the steps of these tests (test batches of 5 rows).
STANDARD = {"eval_protocol": "standard", "test_batch": 5}
N_TRAIN, BATCH = 22, 4  # six batches per epoch, the last one of 2 samples
MLP_BN = ModelSpec.from_config("model", {"name": "mlp", "hidden": [8, 4], "batchnorm": True})
NO_SKIPS = np.zeros(2, dtype=bool)


class CustomLoss(NamedTuple):
    """A loss like the cutoff loss, its ``compute`` replaced (the step reads kind and params)."""

    kind: LossType
    params: dict


def custom(compute) -> CustomLoss:
    return CustomLoss(dataclasses.replace(cutoff.LOSS, compute=compute), CUTOFF.params)


def batch(x, y, var, empty=NO_SKIPS) -> Batch:
    return Batch(x, y, var, empty, [None] * len(empty))


class Data:
    """The part of ``biv.train.run_data.RunData`` that the steps use (feature inputs)."""

    def __init__(self, y_test: torch.Tensor):
        self.y_test = y_test

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x


def pack(device="cpu", spec=MLP_BN, members=2):
    """A pack model of ``members`` (seeds 0, 1, ...) and its optimizer."""
    model = build_pack_model(spec, (3,), list(range(members)), torch.device(device))
    return model, PackAdam(model.stacked(), members, lr=0.05)


def run(steps_class, device="cpu", n_steps=14, loss=None, protocol="standard"):
    """Losses and skip flags, test sums and final state of a short run of a pack of two with
    BatchNorm, a cutoff member and an L2 member, evaluated after every step in ``protocol``
    (test batches of 4, 4, 2); batch 3 of each epoch has no sample under the threshold."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(N_TRAIN, 3, generator=gen), torch.randn(N_TRAIN, generator=gen)
    var = torch.rand(N_TRAIN, generator=gen) * 2
    var[8:12] = 5.0
    var[20] = 0.5  # the short last batch keeps a sample
    x_test, y_test = torch.randn(10, 3, generator=gen), torch.randn(10, generator=gen)
    model, optimizer = pack(device)
    steps = steps_class(
        model,
        optimizer,
        [loss or CUTOFF, MSE],
        Data(y_test.to(device)),
        list(x_test.to(device).split(4)),
        eval_bf16=True,
        eval_protocol=protocol,
        test_batch=4,
    )
    kept = cutoff.kept(CUTOFF.params, var)
    x, y, var = x.to(device), y.to(device).expand(2, -1), var.to(device).expand(2, -1)
    losses, sums = [], []
    for i in range(n_steps):
        lo = i % 6 * BATCH
        rows = slice(lo, min(lo + BATCH, N_TRAIN))
        empty = np.array([not kept[rows].any(), False])
        result = steps.train_step(batch(x[rows], y[:, rows], var[:, rows], empty))
        losses.append((result.values.cpu(), tuple(empty)))
        sums.append(steps.evaluate().cpu())
    state = [t.detach().cpu().clone() for t in (*model.parameters(), *model.buffers())]
    return losses, sums, state


def assert_same_run(a, b) -> None:
    assert [e for _, e in a[0]] == [e for _, e in b[0]]
    assert all(torch.equal(u, v) for (u, _), (v, _) in zip(a[0], b[0], strict=True))
    assert all(torch.equal(u, v) for u, v in zip(a[1], b[1], strict=True))
    assert all(torch.equal(u, v) for u, v in zip(a[2], b[2], strict=True))


def test_which_runs_use_cuda_graphs():
    mlp = pack()[0]
    cnn = build_pack_model(
        ModelSpec.from_config("model", {"name": "cnn"}), (3, 64, 64), [0], torch.device("cpu")
    )
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    iv, biv, adaptive = (
        LossSpec.from_config("l", {"type": t}) for t in ("iv", "biv", "biv_adaptive")
    )
    for loss in (MSE, iv, biv, CUTOFF):
        assert use_cuda_graphs(True, cuda, mlp, [loss, MSE])
    assert not use_cuda_graphs(False, cuda, mlp, [biv])  # training.cuda_graphs: false
    assert not use_cuda_graphs(True, cpu, mlp, [biv])
    assert not use_cuda_graphs(True, cuda, cnn, [biv])
    assert not use_cuda_graphs(True, cuda, mlp, [biv, adaptive])  # host epsilon
    args = (*pack(), [CUTOFF] * 2, Data(torch.zeros(1)), [])
    for graphs, cls in ((False, Steps), (True, GraphedSteps)):
        steps = make_steps(*args, cuda_graphs=graphs, eval_bf16=True, **STANDARD)
        assert type(steps) is cls


def test_an_empty_batch_runs_only_the_forward_pass():
    """A member whose cutoff batch is empty is skipped: loss 0, its weights and Adam state
    untouched; its packmate trains; BatchNorm saw the batch."""
    losses, _, _ = run(Steps)
    assert [i for i, (_, empty) in enumerate(losses) if empty[0]] == [2, 8]
    assert all(float(values[0]) == 0 for values, empty in losses if empty[0])
    model, optimizer = pack()
    before = [p.detach().clone() for p in model.stacked()]
    steps = Steps(model, optimizer, [CUTOFF] * 2, Data(torch.zeros(1)), [], False, **STANDARD)
    var = torch.stack([torch.full((4,), 5.0), torch.full((4,), 0.5)])
    result = steps.train_step(
        batch(torch.randn(4, 3), torch.zeros(2, 4), var, np.array([True, False]))
    )
    assert float(result.values[0]) == 0 and float(result.values[1]) > 0
    for p, q in zip(model.stacked(), before, strict=True):
        members = p.detach().view(2, -1), q.view(2, -1)
        assert torch.equal(members[0][0], members[1][0])
        assert not torch.equal(members[0][1], members[1][1])
    assert optimizer.steps.tolist() == [0.0, 1.0]
    assert int(model.layers[1].num_batches_tracked) == 1  # BatchNorm saw the batch


class FakeCuda:
    """torch.cuda's streams, stream contexts, graphs and the allocator's pool calls, on the CPU
    and on a GPU alike: the current stream, and what happened in order. A graph's capture runs
    its body eagerly; its replay does nothing (so a replay never matches the plain step).
    ``fail`` names a capture call that raises ("capture_begin" or "capture_end")."""

    POOL = (0, 7)

    def __init__(self, monkeypatch, fail: str | None = None):
        self.events: list[str] = []
        self.main = self.current = self.Stream("main")
        fake = self

        class Graph:
            ended = False

            def capture_begin(self, pool) -> None:
                fake.events.append(f"capture_begin {pool}")
                if fail == "capture_begin":
                    raise RuntimeError("capture_begin failed")

            def capture_end(self) -> None:
                fake.events.append("capture_end")
                if fail == "capture_end":  # as cudaStreamEndCapture of an invalidated capture
                    raise RuntimeError("capture_end failed")
                self.ended = True

            def pool(self):
                if not self.ended:
                    raise RuntimeError("Called CUDAGraph::pool() without a successful capture")
                return fake.POOL

            def replay(self) -> None:
                fake.events.append("replay")

        @contextlib.contextmanager
        def stream(s):
            before = fake.current
            fake.set_stream(s)
            try:
                yield
            finally:
                fake.set_stream(before)

        def allocator(what):
            return lambda device, pool: fake.events.append(f"{what} {pool}")

        for name, value in {
            "Stream": lambda: self.Stream("side"),
            "current_stream": lambda: self.current,
            "set_stream": self.set_stream,
            "stream": stream,
            "CUDAGraph": Graph,
            "graph_pool_handle": lambda: self.POOL,
            "synchronize": lambda: None,
            "current_device": lambda: 0,
        }.items():
            monkeypatch.setattr(torch.cuda, name, value)
        for name, what in {
            "_cuda_endAllocateToPool": "end allocating to",
            "_cuda_releasePool": "release",
        }.items():
            monkeypatch.setattr(torch._C, name, allocator(what), raising=False)

    def Stream(self, name: str):  # noqa: N802 - stands in for torch.cuda.Stream
        fake = self

        class Stream:
            def wait_stream(self, other) -> None:
                fake.events.append(f"{name} waits for {other.name}")

        stream = Stream()
        stream.name = name
        return stream

    def set_stream(self, stream) -> None:
        self.current = stream


def test_failed_capture_falls_back_to_the_plain_step(monkeypatch, caplog):
    """A capture that fails: one warning for the training step and one for the evaluation, then
    the plain step and evaluation, with the plain run's numbers."""
    FakeCuda(monkeypatch, fail="capture_end")
    with caplog.at_level(logging.WARNING, logger="biv.train.step"):
        graphed = run(GraphedSteps)
    assert_same_run(graphed, run(Steps))
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA graph of the training step (batch of 4): capture failed: "
        "RuntimeError('capture_end failed'); using the plain computation",
        "CUDA graph of the evaluation: capture failed: RuntimeError('capture_end failed'); "
        "using the plain computation",
    ]


def test_warmup_failure_rejoins_the_side_stream_before_the_state_is_restored(monkeypatch):
    """A warm-up step that raises: the caller's stream waits for the side stream's work and is
    current again before the state is restored, and the run goes on with the plain step."""
    cuda = FakeCuda(monkeypatch)
    calls = []

    def failing_second_call(*args):
        calls.append(1)
        if len(calls) == 2:
            cuda.events.append("warm-up raises")
            raise RuntimeError("warm-up failed")
        return cutoff.compute(*args)

    steps = GraphedSteps(*_parts(custom(failing_second_call)), eval_bf16=False, **STANDARD)
    before = [t.clone() for t in steps.model.state_dict().values()]
    x, y, var = torch.randn(4, 3), torch.randn(2, 4), torch.rand(2, 4)
    steps.train_step(batch(x, y, var))
    assert cuda.events == ["side waits for main", "warm-up raises", "main waits for side"]
    assert cuda.current is cuda.main
    assert steps.failed and "warm-up failed" in steps.graphs_used()["fallback"]
    # the plain step from the restored state, nothing else: one update of the initial state
    plain = Steps(*_parts(CUTOFF), eval_bf16=False, **STANDARD)
    plain.model.load_state_dict(dict(zip(plain.model.state_dict(), before, strict=True)))
    plain.train_step(batch(x, y, var))
    for a, b in zip(
        steps.model.state_dict().values(), plain.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


@pytest.mark.parametrize("fail", ["capture_begin", "capture_end"])
def test_a_failed_capture_gives_the_allocator_its_pool_back(monkeypatch, fail):
    """torch's capture_end raises before it stops routing allocations to the graph's pool when
    cudaStreamEndCapture fails, and frees the pool only for a capture that ended: the fallback
    ends the routing and releases the pool itself, on the caller's stream again."""
    cuda = FakeCuda(monkeypatch, fail=fail)
    steps = GraphedSteps(*_parts(CUTOFF), eval_bf16=False, **STANDARD)
    steps.train_step(batch(torch.randn(4, 3), torch.randn(2, 4), torch.rand(2, 4)))
    pool = FakeCuda.POOL
    ends = ["capture_end"] if fail == "capture_end" else []
    assert cuda.events == [
        "side waits for main",
        f"capture_begin {pool}",
        *ends,
        f"end allocating to {pool}",
        f"release {pool}",
        "main waits for side",
    ]
    assert cuda.current is cuda.main
    assert steps.graphs_used() == {
        "used": False,
        "fallback": "CUDA graph of the training step (batch of 4): capture failed: "
        f"RuntimeError('{fail} failed')",
        "evaluation": {"used": True, "fallback": None},
    }


@pytest.mark.parametrize("capture_end", ["ends", "fails"])
def test_a_failure_inside_the_capture_is_the_error_reported(monkeypatch, capture_end):
    """The body raises while capturing (a host sync, say): the capture is ended; if that
    succeeds the graph owns its pool and frees it, else the pool is given back; either way the
    body's error is the reason recorded."""
    cuda = FakeCuda(monkeypatch, fail="capture_end" if capture_end == "fails" else None)

    def fails_when_captured(*args):
        if "capture_begin" in cuda.events[-1]:
            raise RuntimeError("host sync while capturing")
        return cutoff.compute(*args)

    steps = GraphedSteps(*_parts(custom(fails_when_captured)), eval_bf16=False, **STANDARD)
    steps.train_step(batch(torch.randn(4, 3), torch.randn(2, 4), torch.rand(2, 4)))
    released = [e for e in cuda.events if e.startswith(("end allocating", "release"))]
    assert released == (
        []
        if capture_end == "ends"
        else [f"{w} {FakeCuda.POOL}" for w in ("end allocating to", "release")]
    )
    assert "capture_end" in cuda.events and cuda.current is cuda.main
    assert steps.graphs_used()["fallback"].endswith(
        "capture failed: RuntimeError('host sync while capturing')"
    )


def test_a_replay_that_differs_from_the_plain_step_is_not_used(monkeypatch, caplog):
    """Each capture is replayed once against the plain computation from the same state; here
    the replays write nothing, so they differ: the run falls back, for the training step and
    for the evaluation, and equals a plain run."""
    cuda = FakeCuda(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="biv.train.step"):
        graphed = run(GraphedSteps)
    assert cuda.events.count("replay") == 2
    assert "training step (batch of 4): a replay differs from the plain computation (tensor " in (
        caplog.text
    )
    assert "evaluation: a replay differs from the plain computation (tensor " in caplog.text
    assert_same_run(graphed, run(Steps))


def test_evaluation_graph_failure_keeps_the_training_graphs(monkeypatch):
    """A failed evaluation capture gives up the evaluation graph only."""
    FakeCuda(monkeypatch)
    steps = GraphedSteps(*_parts(CUTOFF), eval_bf16=False, **STANDARD)
    steps.chunks = [torch.randn(5, 3)]
    monkeypatch.setattr(step, "_difference", lambda got, expected: None)  # replays "pass"
    steps.train_step(batch(torch.randn(4, 3), torch.randn(2, 4), torch.rand(2, 4)))
    assert len(steps.graphs) == 1

    def no_capture(fn):
        raise RuntimeError("no evaluation graph")

    monkeypatch.setattr(step, "_capture", no_capture)
    steps.evaluate()
    assert steps.graphs_used() == {
        "used": True,
        "fallback": None,
        "evaluation": {
            "used": False,
            "fallback": "CUDA graph of the evaluation: capture failed: "
            "RuntimeError('no evaluation graph')",
        },
    }


def _parts(loss):
    return (*pack(), [loss, CUTOFF], Data(torch.zeros(5)), [])


def test_state_is_restored_when_a_capture_fails_after_its_warmup(monkeypatch, caplog):
    """The warm-up steps really train (on the CPU here); a capture failing after them leaves
    the model and optimizer exactly as they were, for the training and the evaluation graph."""
    FakeCuda(monkeypatch)
    calls = []

    def no_graph():
        calls.append(1)
        raise RuntimeError("no capture here")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", no_graph)
    seen = []

    def counting(pred, target, *args):
        seen.append(len(target))
        return cutoff.compute(pred, target, *args)

    with caplog.at_level(logging.WARNING, logger="biv.train.step"):
        graphed = run(GraphedSteps, loss=custom(counting))
    assert calls == [1, 1]  # the training step's capture, then the evaluation's
    assert seen[: step.WARMUP_STEPS] == [BATCH] * step.WARMUP_STEPS  # warm-up ran
    assert "no capture here" in caplog.text
    assert_same_run(graphed, run(Steps))

    # the evaluation graph fails after its warm-up: evaluation leaves the state alone
    model = pack()[0]
    parts = (model, None, [CUTOFF] * 2, Data(torch.zeros(5)), [torch.randn(5, 3)])
    steps = GraphedSteps(*parts, True, **STANDARD)
    before = [t.clone() for t in model.state_dict().values()]
    assert torch.equal(steps.evaluate(), Steps.evaluate(steps))
    assert steps.eval_fallback and not steps.failed and calls == [1, 1, 1] and model.training
    after = model.state_dict().values()
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


cuda = pytest.mark.cuda  # skipped without a GPU (conftest)


def test_original_eval_protocol_changes_only_the_test_values():
    standard, original = run(Steps), run(Steps, protocol="original")
    assert_same_run((standard[0], [], standard[2]), (original[0], [], original[2]))
    assert all(not torch.equal(a, b) for a, b in zip(standard[1], original[1], strict=True))


@cuda
def test_cuda_graphs_original_eval_protocol(caplog):
    with caplog.at_level(logging.WARNING, logger="biv.train.step"):
        graphed = run(GraphedSteps, device="cuda", protocol="original")
    assert not caplog.records
    plain = run(Steps, device="cuda", protocol="original")
    for a, b in zip(graphed[1] + graphed[2], plain[1] + plain[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@cuda
def test_cuda_graphs_capture_and_replay(caplog):
    with caplog.at_level(logging.WARNING, logger="biv.train.step"):
        first = run(GraphedSteps, device="cuda")
    assert not caplog.records  # every capture succeeded
    assert_same_run(first, run(GraphedSteps, device="cuda"))  # same seed, same GPU
    # against the plain step as production runs it without graphs
    plain = run(Steps, device="cuda")
    assert [e for _, e in first[0]] == [e for _, e in plain[0]]
    for a, b in zip(first[2] + first[1], plain[2] + plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_evaluation_and_cuda_graphs_only_where_asked_for(monkeypatch):
    """bfloat16 evaluation only where asked for and computed natively, CUDA graphs only where
    asked for (exact float32 on CUDA: tests/test_devices.py)."""
    from biv.config.training import TRAINING_DEFAULTS
    from biv.train.evaluation import use_bf16

    assert TRAINING_DEFAULTS["eval_bf16"] is False and TRAINING_DEFAULTS["cuda_graphs"] is False
    emulated = lambda including_emulation=True: including_emulation  # noqa: E731
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulated)
    cuda_images = type("CudaImages", (), {"is_cuda": True, "ndim": 4})()
    assert not use_bf16(True, cuda_images)  # only emulated: float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert use_bf16(True, cuda_images) and not use_bf16(False, cuda_images)


def test_resnet18_pooling_backward_is_a_mean():
    """ResNet-18's AdaptiveAvgPool2d to 1x1 runs as a mean, whose backward is deterministic on
    CUDA (adaptive_avg_pool2d_backward_cuda, which is not, never runs)."""
    from biv.train.models import resnet18_regressor

    model = resnet18_regressor()
    out = model(torch.randn(2, 3, 32, 32)).sum()
    seen, todo = set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(next_fn for next_fn, _ in node.next_functions)
    names = {type(node).__name__ for node in seen}
    assert "MeanBackward1" in names
    assert not {n for n in names if n.startswith("AdaptiveAvgPool")}
