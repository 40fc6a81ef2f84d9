"""biv.report.iv_scale: BIV is IV times K / Σw per batch (loss and gradient, through the
product's losses), Adam takes the same steps for gradients scaled by a constant, and the spread
of the scale is what its definition says."""

from __future__ import annotations

import pytest
import torch

from biv.losses import biv, iv
from biv.report.iv_scale import batch_scales, spread
from biv.train.optim import PackAdam


@pytest.mark.parametrize("drop_last", [False, True])
def test_biv_is_iv_times_the_batch_scale_in_loss_and_gradient(drop_last):
    gen = torch.Generator().manual_seed(1)
    n, k, eps = 30, 7, 0.1
    var = -torch.rand(n, generator=gen, dtype=torch.float64).log()  # exponential, as Bike's
    target = torch.randn(n, generator=gen, dtype=torch.float64)
    pred = torch.randn(n, generator=gen, dtype=torch.float64, requires_grad=True)
    scales = batch_scales(var, eps, k, drop_last)
    assert len(scales) == (4 if drop_last else 5)  # 4 batches of 7, and a last one of 2
    for b, scale in enumerate(scales):
        rows = slice(b * k, b * k + k)
        p, t, v = pred[rows], target[rows], var[rows]
        biv_loss, iv_loss = biv.loss(p, t, v, eps), iv.loss(p, t, v, eps)
        torch.testing.assert_close(biv_loss, scale * iv_loss)
        (g_biv,) = torch.autograd.grad(biv_loss, p)
        (g_iv,) = torch.autograd.grad(iv_loss, p)
        torch.testing.assert_close(g_biv, scale * g_iv)
        assert abs(float(scale) - len(v) / float((1 / (v + eps)).sum())) < 1e-12


def test_spread_of_the_scales():
    assert spread(torch.tensor([1.0, 3.0])) == {"mean": 2.0, "cv": 0.5, "min": 1.0, "max": 3.0}
    same = spread(batch_scales(torch.full((10,), 0.4, dtype=torch.float64), 0.1, 3))
    assert same["cv"] == pytest.approx(0, abs=1e-15) and same["mean"] == pytest.approx(0.5)


def test_adam_steps_alike_for_gradients_scaled_by_a_constant():
    """Under Adam a constant factor on every gradient (BIV's scale, were it the same for every
    batch) changes no step beyond its epsilon's share; a factor that varies does."""
    gen = torch.Generator().manual_seed(2)
    grads = [torch.randn(1, 50, generator=gen, dtype=torch.float64) for _ in range(30)]

    def final(factors):
        param = torch.zeros(1, 50, dtype=torch.float64)
        adam = PackAdam([param], 1, lr=0.01)
        for g, c in zip(grads, factors, strict=True):
            adam.step([c * g])
        return param

    plain = final([1.0] * 30)
    torch.testing.assert_close(final([0.38] * 30), plain, rtol=1e-6, atol=0)
    varying = final(torch.linspace(0.3, 0.46, 30).tolist())
    assert (varying - plain).abs().max() > 1e-4
