"""biv.train.evaluation: the CPU path is the plain float32 computation; bf16 autocast (CUDA
images only) stays within a stated tolerance of float32; the original's protocol equals an
independent per-batch computation and leaves the model untouched."""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch

from biv.train import evaluation
from biv.train.evaluation import BF16_MSE_RTOL, bf16_vs_float32, use_bf16
from biv.train.models import MLP, AgeCNN
from biv.train.pack_model import ModulePack, StackedMLP

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: bf16 autocast against float32, in normalized label units (label std 1): the largest change of
#: one prediction (the relative change of the test MSE is biv.train.evaluation.BF16_MSE_RTOL).
#: Measured with CPU autocast on the trained toy CNN below: 0.024 and 0.14 % (0.05 and 0.4 % at
#: most over three seeds).
BF16_MAX_PRED_CHANGE = 0.1


class Data:
    """The part of ``biv.train.run_data.RunData`` that evaluation uses."""

    def __init__(self, y_test: torch.Tensor, images: bool):
        self.y_test = y_test
        self.mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1) if images else None
        self.std = torch.tensor([0.25, 0.2, 0.3]).view(1, 3, 1, 1) if images else None

    def to(self, device: str) -> Data:
        self.y_test = self.y_test.to(device)
        if self.mean is not None:
            self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return x
        return x.float().div_(255.0).sub_(self.mean).div_(self.std)


def predict(model, data, chunks, *args, **kwargs):
    """``biv.train.evaluation.predict`` of ``model`` as a pack of one: its predictions."""
    return evaluation.predict(pack(model, chunks), data, chunks, *args, **kwargs)[0]


def evaluate(model, data, chunks, **kwargs):
    """``biv.train.evaluation.evaluate`` of ``model`` as a pack of one, ``chunks`` its test
    batches: its error sums."""
    batch = len(chunks[0])
    return evaluation.evaluate(pack(model, chunks), data, chunks, test_batch=batch, **kwargs)[0]


def pack(model, chunks):
    """A pack of one around ``model``, its parameters replaced by views of the same values."""
    return ModulePack([model], chunks[0].ndim - 1)


def reference_predict(model, data, chunks):
    """The evaluation as it was before inference_mode and the CUDA options."""
    model.eval()
    with torch.no_grad():
        outputs = [model(data.inputs(x)) for x in chunks]
        pred = (outputs[0] if len(outputs) == 1 else torch.cat(outputs)).squeeze(1)
    model.train()
    return pred


def images(n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 64, 64), generator=gen, dtype=torch.uint8)
    signal = x[:, 0].float().mean((1, 2)) - x[:, 2].float().mean((1, 2))
    return x, (signal - signal.mean()) / signal.std()


def trained_cnn(seed: int = 1, steps: int = 40):
    """The age CNN after a few Adam steps on 256 toy images; 64 held-out test images."""
    x, y = images(320, seed)
    data = Data(y[256:], images=True)
    torch.manual_seed(seed)
    model = AgeCNN(64, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, 256, (32,), generator=gen)
        loss = (model(data.inputs(x[idx])).squeeze(1) - y[idx]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, data, list(x[256:].split(24))


@pytest.mark.parametrize("bf16", [False, True])
def test_cpu_evaluation_is_unchanged(bf16):
    torch.manual_seed(0)
    mlp = MLP(4, (16, 8), batchnorm=True)
    x = torch.randn(50, 4)
    data = Data(torch.randn(50), images=False)
    mlp(x)  # BatchNorm running statistics away from their initial values
    x_img, y_img = images(7, 0)
    cases = [(mlp, data, list(x.split(16))), (AgeCNN(64, 64), Data(y_img, True), [x_img])]
    for model, data, chunks in cases:
        expected = reference_predict(model, data, chunks)
        pred = predict(model, data, chunks, bf16)
        assert pred.dtype == torch.float32 and torch.equal(pred, expected)
        assert model.training
        err = expected - data.y_test
        sums = evaluate(model, data, chunks, bf16=bf16)
        assert sums.dtype == torch.float64 and not sums.requires_grad
        assert torch.equal(
            sums,
            torch.stack(
                (err.square().sum(dtype=torch.float64), err.abs().sum(dtype=torch.float64))
            ),
        )


def test_bf16_only_for_cuda_images():
    assert not use_bf16(True, torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    assert not use_bf16(True, torch.zeros(2, 4))
    assert not use_bf16(False, torch.zeros(2, 3, 8, 8))


def _bf16_within_tolerance(fp32: torch.Tensor, bf16: torch.Tensor, y: torch.Tensor) -> None:
    assert bf16.dtype == torch.float32
    assert float((bf16 - fp32).abs().max()) <= BF16_MAX_PRED_CHANGE
    mse32, mse16 = (float((p - y).square().mean()) for p in (fp32, bf16))
    assert mse16 == pytest.approx(mse32, rel=BF16_MSE_RTOL)


def test_bf16_vs_float32_per_member():
    """Known values: member 0's bf16 MSE is 1.01x the float32 one, member 1's 1.04x."""
    y, fp32 = torch.zeros(4, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64)
    bf16 = torch.tensor([[1.01**0.5] * 4, [1.04**0.5] * 4], dtype=torch.float64)
    checks = bf16_vs_float32(bf16, fp32, y)
    assert [c["final_test_mse_rel_diff_vs_float32"] for c in checks] == pytest.approx(
        [0.01, 0.04], rel=1e-9
    )
    assert [c["within_bound"] for c in checks] == [True, False]
    assert {c["bound"] for c in checks} == {BF16_MSE_RTOL}


def test_bf16_tolerance_with_cpu_autocast():
    """The tolerance stated for CUDA, checked with CPU bf16 autocast (bf16 rounding of every
    convolution and linear layer, float32 accumulation, as on the GPU)."""
    model, data, chunks = trained_cnn()
    fp32 = predict(model, data, chunks)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = predict(model, data, chunks)
    assert not torch.equal(bf16, fp32)
    _bf16_within_tolerance(fp32, bf16, data.y_test)


@pytest.mark.cuda
def test_cuda_bf16_and_channels_last_evaluation():
    model, data, chunks = trained_cnn()
    model, data = model.cuda(), data.to("cuda")
    chunks = [c.cuda() for c in chunks]
    fp32 = predict(model, data, chunks, bf16=False)
    reference = reference_predict(model, data, chunks)
    torch.testing.assert_close(fp32, reference, rtol=1e-4, atol=1e-4)  # channels_last only
    bf16 = predict(model, data, chunks, bf16=True)
    assert torch.equal(bf16, predict(model, data, chunks, bf16=True))  # deterministic
    if torch.cuda.is_bf16_supported():
        _bf16_within_tolerance(fp32, bf16, data.y_test)
    else:
        assert torch.equal(bf16, fp32)


def per_batch_reference(model, data, chunks):
    """The original's test loss, computed independently: a copy of the model in training mode
    (BatchNorm with each batch's statistics) on each test batch, then the mean of the per-batch
    MSEs and MAEs."""
    copy = deepcopy(model).train()
    mses, maes, start = [], [], 0
    with torch.no_grad():
        for x in chunks:
            y = data.y_test[start : start + len(x)]
            start += len(x)
            err = copy(data.inputs(x)).squeeze(1).double() - y.double()
            mses.append(float(err.square().mean()))
            maes.append(float(err.abs().mean()))
    return sum(mses) / len(mses), sum(maes) / len(maes)


def state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_original_protocol_is_the_mean_of_per_batch_errors_with_batch_statistics(kind):
    if kind == "mlp":
        torch.manual_seed(0)
        model = MLP(4, (16, 8), batchnorm=True)
        model(torch.randn(50, 4) * 2 + 1)  # running statistics away from their initial values
        data = Data(torch.randn(41), images=False)
        chunks = list((torch.randn(41, 4) * 3).split(16))  # 16, 16, 9
    else:
        model, data, chunks = trained_cnn()  # 64 test images: 24, 24, 16
    before = state(model)
    mse, mae = per_batch_reference(model, data, chunks)
    n = len(data.y_test)
    sums = evaluate(model, data, chunks, protocol="original")
    assert sums.dtype == torch.float64
    assert float(sums[0]) / n == pytest.approx(mse, rel=1e-6)
    assert float(sums[1]) / n == pytest.approx(mae, rel=1e-6)
    # the model is untouched: running statistics, num_batches_tracked, modes
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training
    assert all(m.track_running_stats for m in model.modules() if hasattr(m, "running_mean"))
    # batch statistics, not the running ones: the standard protocol differs
    standard = evaluate(model, data, chunks)
    assert abs(float(standard[0]) / n - mse) > 1e-3


def test_original_protocol_without_batchnorm_weights_every_batch_alike():
    """An MLP without BatchNorm predicts the same under both protocols; only the average differs:
    the short last batch counts as much as a full one."""
    torch.manual_seed(0)
    model = MLP(4, (16, 8))
    x, y = torch.randn(41, 4), torch.randn(41)
    data, chunks = Data(y, images=False), list(x.split(16))
    assert torch.equal(
        predict(model, data, chunks, protocol="original"), predict(model, data, chunks)
    )
    err = (predict(model, data, chunks) - y).double()
    per_batch = [float(e.square().mean()) for e in err.split(16)]
    sums = evaluate(model, data, chunks, protocol="original")
    assert float(sums[0]) / 41 == pytest.approx(sum(per_batch) / 3, rel=1e-6)
    assert float(sums[0]) / 41 != pytest.approx(float(err.square().mean()), rel=1e-3)


def test_a_stacked_mlp_evaluates_each_member_as_its_own_mlp():
    """Members of a StackedMLP (BatchNorm included) predict, under both protocols, what each
    member's own MLP predicts: the same float64 numbers up to summation order."""
    mlps = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        mlps.append(MLP(4, (16, 8), batchnorm=True).double())
        mlps[-1](torch.randn(50, 4, dtype=torch.float64) * 2 + 1)  # running statistics moved
    stacked = StackedMLP(mlps)
    data = Data(torch.randn(41, dtype=torch.float64), images=False)
    chunks = list((torch.randn(41, 4, dtype=torch.float64) * 3).split(16))
    for protocol in ("standard", "original"):
        pred = evaluation.predict(stacked, data, chunks, protocol=protocol)
        sums = evaluation.evaluate(stacked, data, chunks, test_batch=16, protocol=protocol)
        assert pred.shape == (3, 41) and sums.shape == (3, 2)
        for m, mlp in enumerate(mlps):
            torch.testing.assert_close(pred[m], predict(mlp, data, chunks, protocol=protocol))
            torch.testing.assert_close(sums[m], evaluate(mlp, data, chunks, protocol=protocol))


def test_eval_mode_switches_only_a_model_whose_layers_depend_on_it():
    """A model with BatchNorm is evaluated in eval mode and left in train mode; one without
    BatchNorm or dropout, whose layers compute the same in both modes, is not switched."""
    plain, normed = MLP(4, (8,), batchnorm=False), MLP(4, (8,), batchnorm=True)
    for model in (plain, normed):
        model.train()
        with evaluation.eval_mode(model):
            inside = [m.training for m in model.modules()]
        assert all(m.training for m in model.modules())
        assert not any(inside) if model is normed else all(inside)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("members", [1, 5, 20])
def test_passes_give_the_numbers_of_the_test_batches(threads, members):
    """A feature model runs on pieces of the test set sized for speed (``passes``), not on the
    test batches: a row's prediction does not depend on the rows computed with it, so the
    predictions and both protocols' error sums are those of the test batches, to the bit (the
    Bike MLP's shapes, 3,379 test rows, trained-like weights of several scales)."""
    torch.set_num_threads(threads)  # the module's fixture restores the thread count
    torch.manual_seed(members)
    mlps = [MLP(19, [100, 50, 20, 10], batchnorm=False) for _ in range(members)]
    with torch.no_grad():
        for mlp in mlps:
            for p in mlp.parameters():
                p.mul_(torch.empty(()).uniform_(0.5, 3.0))
    model = StackedMLP(mlps)
    x, data = torch.randn(3379, 19), Data(torch.randn(3379), images=False)
    batches = list(x.split(256))
    pieces = evaluation.passes(model, x, 256, "original")
    assert len(pieces) != len(batches)
    assert torch.equal(
        evaluation.predict(model, data, pieces), evaluation.predict(model, data, batches)
    )
    for protocol in ("standard", "original"):
        in_passes = evaluation.evaluate(model, data, pieces, protocol=protocol, test_batch=256)
        batched = evaluation.evaluate(model, data, batches, test_batch=256, protocol=protocol)
        assert torch.equal(in_passes, batched)


def test_batch_statistics_and_images_run_on_the_test_batches():
    """Where a batch's predictions depend on the batch (BatchNorm under the original protocol)
    or the inputs are images, the passes are the test batches."""
    x = torch.randn(1000, 8)
    with_bn = StackedMLP([MLP(8, [16], batchnorm=True)])
    sizes = [len(p) for p in evaluation.passes(with_bn, x, 300, "original")]
    assert sizes == [300, 300, 300, 100]
    assert len(evaluation.passes(with_bn, x, 300, "standard")) == 1
    images = torch.zeros(10, 3, 64, 64, dtype=torch.uint8)
    cnn = pack(AgeCNN(64, 64), [images])
    assert [len(p) for p in evaluation.passes(cnn, images, 4, "standard")] == [4, 4, 2]
