"""Losses: hand-computed values and identities that a wrong formula would break."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from biv.config import LossSpec
from biv.losses import LossResult, biv, biv_adaptive, cutoff, iv, mse, registered, trusted_variances

# e = pred - target = [1, 2, 2]; with eps = 0.5 the weights are w = 1/(var + eps) = [1, 1/2, 1/4]
PRED = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
TARGET = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
VAR = torch.tensor([0.5, 1.5, 3.5], dtype=torch.float64)


def batch(k: int = 64, seed: int = 0, zeros: int = 0):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(k, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randn(k, generator=gen, dtype=torch.float64)
    var = torch.rand(k, generator=gen, dtype=torch.float64) * 3 + 0.01
    var[:zeros] = 0.0
    return pred, target, var


def grad(fn, pred: torch.Tensor) -> torch.Tensor:
    pred = pred.detach().clone().requires_grad_(True)
    fn(pred).backward()
    return pred.grad


def test_hand_computed_values():
    assert mse.loss(PRED, TARGET).item() == pytest.approx(9 / 3)  # (1 + 4 + 4) / 3
    assert iv.loss(PRED, TARGET, VAR, 0.5).item() == pytest.approx((1 + 2 + 1) / 3)
    assert biv.loss(PRED, TARGET, VAR, 0.5).item() == pytest.approx(4 / 1.75)  # 16/7
    assert biv.loss(PRED, TARGET, VAR, 0.0).item() == pytest.approx(
        (2 + 8 / 3 + 8 / 7) / (2 + 2 / 3 + 2 / 7)
    )
    assert cutoff.loss(PRED, TARGET, VAR, 2.0).item() == pytest.approx((1 + 4) / 2)
    assert cutoff.loss(PRED, TARGET, VAR, 1.5).item() == pytest.approx(1.0)  # strict: 1.5 is out
    assert cutoff.loss(PRED, TARGET, VAR, 0.5) is None


def test_hand_computed_gradients():
    w = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    e = PRED - TARGET
    torch.testing.assert_close(grad(lambda f: mse.loss(f, TARGET), PRED), 2 * e / 3)
    torch.testing.assert_close(grad(lambda f: iv.loss(f, TARGET, VAR), PRED), 2 * w * e / 3)
    torch.testing.assert_close(grad(lambda f: biv.loss(f, TARGET, VAR), PRED), 2 * w * e / 1.75)
    torch.testing.assert_close(
        grad(lambda f: cutoff.loss(f, TARGET, VAR, 2.0), PRED),
        torch.tensor([1.0, 2.0, 0.0]).double(),
    )


@pytest.mark.parametrize(
    "fn",
    [
        lambda p, t, v: mse.loss(p, t),
        lambda p, t, v: iv.loss(p, t, v),
        lambda p, t, v: biv.loss(p, t, v),
        lambda p, t, v: biv_adaptive.loss(p, t, v)[0],
        lambda p, t, v: cutoff.loss(p, t, v, 2.0),
    ],
)
def test_column_shapes_are_flattened_not_broadcast(fn):
    ref = fn(PRED, TARGET, VAR)
    col = PRED[:, None], TARGET[:, None], VAR[:, None]
    for args in [col, (col[0], TARGET, VAR), (PRED, col[1], col[2]), (col[0], col[1], VAR)]:
        assert fn(*args).item() == pytest.approx(ref.item(), rel=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((PRED, TARGET[:2], VAR), "same number K"),
        ((PRED, TARGET, VAR[:2]), "var must hold K=3"),
        ((PRED[None, :], TARGET, VAR), "pred must have shape (K,) or (K, 1), got (1, 3)"),
        ((PRED, TARGET, torch.ones(3, 2)), "var must have shape"),
        ((PRED, [0.0, 0.0, 1.0], VAR), "target must be a torch.Tensor"),
        ((PRED[:0], TARGET[:0], VAR[:0]), "K >= 1"),
        (
            (PRED, TARGET, torch.tensor([0.5, -1.0, 1.0])),
            "var must be finite and >= 0, got var[1]=-1.0",
        ),
        ((PRED, TARGET, torch.tensor([0.5, 1.0, math.nan])), "got var[2]=nan"),
        ((PRED, TARGET, torch.tensor([math.inf, 1.0, 1.0])), "got var[0]=inf"),
    ],
)
def test_bad_inputs(args, message):
    for fn in (iv.loss, biv.loss, biv_adaptive.loss, lambda p, t, v: cutoff.loss(p, t, v, 1.0)):
        with pytest.raises(ValueError) as err:
            fn(*args)
        assert message in str(err.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: biv.loss(PRED, TARGET, VAR, -0.1),
            "epsilon: -0.1 is not allowed; expected a finite",
        ),
        (lambda: iv.loss(PRED, TARGET, VAR, math.inf), "epsilon: inf is not allowed"),
        (lambda: biv.loss(PRED, TARGET, VAR, math.nan), "epsilon: nan is not allowed"),
        (lambda: biv.loss(PRED, TARGET, VAR, "0.5"), "epsilon: '0.5' is not allowed"),
        (lambda: biv.loss(PRED, TARGET, torch.tensor([1.0, 0.0, 2.0]), 0), "got var[1]=0.0"),
        (
            lambda: iv.loss(PRED, TARGET, torch.tensor([1.0, 0.0, 2.0]), 0.0),
            "epsilon=0.0 needs every var > 0",
        ),
        (
            lambda: biv_adaptive.loss(PRED, TARGET, VAR, 0.0),
            "ratio: 0.0 is not allowed; expected a finite number > 0 and <= 1",
        ),
        (lambda: biv_adaptive.loss(PRED, TARGET, VAR, 1.5), "ratio: 1.5 is not allowed"),
        (
            lambda: cutoff.loss(PRED, TARGET, VAR, 0.0),
            "threshold: 0.0 is not allowed; expected a number > 0",
        ),
        (lambda: cutoff.loss(PRED, TARGET, VAR, math.nan), "threshold: nan is not allowed"),
    ],
)
def test_bad_parameters(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_biv_with_equal_variances_is_mse():
    pred, target, _ = batch()
    for v, eps in [(0.3, 0.0), (0.3, 0.5), (0.0, 0.5), (7.0, 100.0)]:
        var = torch.full_like(target, v)
        assert biv.loss(pred, target, var, eps).item() == pytest.approx(
            mse.loss(pred, target).item(), 1e-12
        )


def test_biv_tends_to_mse_as_epsilon_grows():
    pred, target, var = batch()
    gaps = [
        abs(biv.loss(pred, target, var, eps) - mse.loss(pred, target)).item()
        for eps in (1, 1e2, 1e4, 1e6)
    ]
    assert gaps[0] > 1e-3
    assert all(b < a / 50 for a, b in zip(gaps, gaps[1:], strict=False))  # ~ O(1/eps)
    assert gaps[-1] < 1e-5 * mse.loss(pred, target).item()


def test_iv_gradient_is_twice_gaussian_nll_gradient():
    pred, target, var = batch()
    for eps in (0.5, 0.01):
        g_iv = grad(lambda f, eps=eps: iv.loss(f, target, var, eps), pred)
        g_nll = grad(lambda f, eps=eps: F.gaussian_nll_loss(f, target, var + eps), pred)
        torch.testing.assert_close(g_iv, 2 * g_nll)


def test_iv_and_biv_differ_by_the_weight_normalization():
    pred, target, var = batch()
    w_sum = (1 / (var + 0.5)).sum()
    torch.testing.assert_close(
        iv.loss(pred, target, var) * len(var) / w_sum, biv.loss(pred, target, var)
    )


def test_biv_is_invariant_to_a_common_variance_scale():
    pred, target, var = batch()
    torch.testing.assert_close(
        biv.loss(pred, target, 1e3 * var, 1e3 * 0.5), biv.loss(pred, target, var, 0.5)
    )


def test_biv_epsilon_zero_uses_pure_inverse_variance_weights():
    pred, target, var = batch()
    w = 1 / var
    expected = (w * (pred - target) ** 2).sum() / w.sum()
    torch.testing.assert_close(biv.loss(pred, target, var, 0.0), expected)


def test_cutoff_with_infinite_threshold_is_mse():
    pred, target, var = batch()
    torch.testing.assert_close(cutoff.loss(pred, target, var, math.inf), mse.loss(pred, target))
    torch.testing.assert_close(
        grad(lambda f: cutoff.loss(f, target, var, math.inf), pred),
        grad(lambda f: mse.loss(f, target), pred),
    )


def test_cutoff_keeps_exactly_the_low_variance_samples():
    pred, target, var = batch()
    keep = var < 1.0
    torch.testing.assert_close(
        cutoff.loss(pred, target, var, 1.0), mse.loss(pred[keep], target[keep])
    )
    g = grad(lambda f: cutoff.loss(f, target, var, 1.0), pred)
    assert torch.all(g[~keep] == 0) and torch.all(g[keep] != 0)


def effective_batch_size(var: torch.Tensor, eps: float) -> float:
    """(sum w)^2 / sum w^2 of the BIV weights w = 1/(var + eps), written out independently of
    the loss module's search (float64)."""
    w = 1 / (var.double() + eps)
    return float(w.sum() ** 2 / w.square().sum())


def test_effective_batch_size():
    # weights [1, 1/2, 1/4]: (7/4)^2 / (21/16) = 7/3
    assert effective_batch_size(VAR, 0.5) == pytest.approx(7 / 3)
    assert effective_batch_size(torch.full((5,), 2.0), 0.0) == pytest.approx(5)


def ess_target_check(var, ratio, eps):
    """eps meets the target and, up to the bisection tolerance, no smaller eps does."""
    k = len(var)
    assert effective_batch_size(var, eps) >= ratio * k * (1 - 1e-12)
    floor = 0.0 if (var > 0).all() else biv_adaptive.ZERO_VAR_FLOOR * var[var > 0].min().item()
    smaller = eps * (1 - 10 * biv_adaptive.BISECTION_RTOL)
    assert smaller > floor
    assert effective_batch_size(var, smaller) < ratio * k


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("zeros", [0, 3])
def test_adaptive_biv_meets_its_target_with_the_smallest_epsilon(ratio, zeros):
    pred, target, var = batch(zeros=zeros)
    var = var**4  # widely spread variances: eps = 0 misses every target here
    assert effective_batch_size(var, 0.0 if zeros == 0 else 1e-12) < 0.1 * len(var)
    loss, eps = biv_adaptive.loss(pred, target, var, ratio)
    assert isinstance(eps, float) and eps > 0
    ess_target_check(var, ratio, eps)
    torch.testing.assert_close(loss, biv.loss(pred, target, var, eps))
    torch.testing.assert_close(
        grad(lambda f: biv_adaptive.loss(f, target, var, ratio)[0], pred),
        grad(lambda f: biv.loss(f, target, var, eps), pred),
    )


def test_adaptive_epsilon_hand_computed():
    # var = [1, 3]: with rho = (3 + eps)/(1 + eps), ESS = (1 + rho)^2 / (1 + rho^2); ESS = 0.9 * 2
    # gives 0.8 rho^2 - 2 rho + 0.8 = 0, rho = 2, eps = 1 and weights [1/2, 1/4].
    var = torch.tensor([1.0, 3.0], dtype=torch.float64)
    loss, eps = biv_adaptive.loss(PRED[:2], TARGET[:2], var, 0.9)
    assert eps == pytest.approx(1.0, rel=2 * biv_adaptive.BISECTION_RTOL)
    assert loss.item() == pytest.approx((1 / 2 + 4 / 4) / (3 / 4), rel=1e-5)


def test_adaptive_epsilon_grows_with_ratio_and_scales_with_variances():
    pred, target, var = batch()
    eps = [biv_adaptive.loss(pred, target, var, r)[1] for r in (0.8, 0.9, 0.95, 0.99)]
    assert eps == sorted(eps) and len(set(eps)) == 4
    eps_scaled = biv_adaptive.loss(pred, target, 1e4 * var, 0.9)[1]
    assert eps_scaled == pytest.approx(1e4 * eps[1], rel=2 * biv_adaptive.BISECTION_RTOL)


def test_adaptive_biv_equals_biv_at_zero_when_target_met():
    pred, target, _ = batch()
    var = torch.linspace(1.0, 1.5, len(target), dtype=torch.float64)  # ESS(0) ~ 0.99 K
    assert effective_batch_size(var, 0.0) >= 0.9 * len(var)
    loss, eps = biv_adaptive.loss(pred, target, var, 0.9)
    assert eps == 0.0
    assert torch.equal(loss, biv.loss(pred, target, var, 0.0))
    loss, eps = biv_adaptive.loss(pred, target, torch.full_like(var, 2.0), 1.0)  # equal: ESS = K
    assert eps == 0.0 and loss.item() == pytest.approx(mse.loss(pred, target).item(), rel=1e-12)


def test_adaptive_biv_with_zero_variances():
    pred, target, var = batch(zeros=40)  # 40 of 64 at 0: ESS -> 40 as eps -> 0+
    loss, eps = biv_adaptive.loss(pred, target, var, 0.5)
    floor = biv_adaptive.ZERO_VAR_FLOOR * var[var > 0].min().item()
    assert eps == floor
    torch.testing.assert_close(loss, mse.loss(pred[:40], target[:40]), rtol=1e-6, atol=0)
    loss, eps = biv_adaptive.loss(pred, target, torch.zeros_like(var), 1.0)  # all weights equal
    assert eps == biv_adaptive.ZERO_VAR_FLOOR
    torch.testing.assert_close(loss, mse.loss(pred, target))


def test_adaptive_biv_ratio_one_with_unequal_variances_is_the_mse_limit():
    pred, target, var = batch()
    loss, eps = biv_adaptive.loss(pred, target, var, 1.0)
    assert eps == math.inf
    torch.testing.assert_close(loss, mse.loss(pred, target))


def test_adaptive_biv_is_deterministic():
    pred, target, var = batch(k=256, seed=3)
    results = [biv_adaptive.loss(pred, target, var, 0.5) for _ in range(2)]
    assert results[0][1] == results[1][1] and torch.equal(results[0][0], results[1][0])


def compute(cfg: dict, pred, target, var, var_host=None) -> LossResult:
    """The loss of a config entry on a batch, as the training step computes it."""
    spec = LossSpec.from_config("loss", cfg)
    return spec.kind.compute(pred, target, var, spec.params, var_host)


@pytest.mark.parametrize(
    ("cfg", "expected", "epsilon"),
    [
        ({"type": "mse"}, lambda p, t, v: mse.loss(p, t), None),
        ({"type": "iv", "epsilon": 0.1}, lambda p, t, v: iv.loss(p, t, v, 0.1), 0.1),
        ({"type": "iv"}, lambda p, t, v: iv.loss(p, t, v, 0.5), 0.5),
        ({"type": "biv", "epsilon": 2}, lambda p, t, v: biv.loss(p, t, v, 2.0), 2.0),
        ({"type": "biv"}, lambda p, t, v: biv.loss(p, t, v, 0.5), 0.5),
        (
            {"type": "biv_adaptive", "ratio": 0.7},
            lambda p, t, v: biv_adaptive.loss(p, t, v, 0.7)[0],
            "chosen",
        ),
        ({"type": "cutoff", "threshold": 1.0}, lambda p, t, v: cutoff.loss(p, t, v, 1.0), None),
    ],
)
def test_compute_of_each_registered_type(cfg, expected, epsilon):
    pred, target, var = batch()
    result = compute(cfg, pred, target, var)
    assert isinstance(result, LossResult)
    torch.testing.assert_close(result.value, expected(pred, target, var))
    if epsilon == "chosen":
        epsilon = biv_adaptive.loss(pred, target, var, 0.7)[1]
    assert result.epsilon == epsilon


def test_cutoff_compute_skips_empty_batches():
    pred, target, var = batch()
    assert compute({"type": "cutoff", "threshold": 1e-6}, pred, target, var) == (None, None)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"type": "l1"}, "loss.type: 'l1' is not allowed; expected one of ['biv', 'biv_adaptive',"),
        (
            {},
            "loss.type: missing (required); one of ['biv', 'biv_adaptive', 'cutoff', 'iv', 'mse']",
        ),
        ("biv", "loss: 'biv' is not allowed"),
        ({"type": "biv", "epsilon": 0.5, "eps": 1}, "loss.eps: unknown key; allowed keys: epsilon"),
        ({"type": "mse", "epsilon": 0.5}, "loss.epsilon: unknown key; allowed keys: type"),
        ({"type": "biv", "epsilon": -1}, "loss.epsilon: -1 is not allowed"),
        (
            {"type": "biv_adaptive", "ratio": 0},
            "loss.ratio: 0 is not allowed; expected a finite number > 0 and <= 1",
        ),
        ({"type": "cutoff"}, "loss.threshold: missing (required)"),
        ({"type": "cutoff", "threshold": -2}, "loss.threshold: -2 is not allowed"),
        ({"type": "cutoff", "threshold": True}, "loss.threshold: True is not allowed"),
    ],
)
def test_loss_spec_rejects_bad_entries(cfg, message):
    with pytest.raises(ValueError) as err:
        LossSpec.from_config("loss", cfg)
    assert message in str(err.value)


def test_compute_validates_variances_for_every_type():
    bad = torch.tensor([1.0, -1.0, 1.0])
    for cfg in ({"type": "mse"}, {"type": "cutoff", "threshold": 1.0}):
        with pytest.raises(ValueError, match="var must be finite and >= 0"):
            compute(cfg, PRED, TARGET, bad)


# ----------------------------------------------------------------------------- trusted variances


LOSS_CALLS = [
    lambda p, t, v: mse.loss(p, t),
    lambda p, t, v: iv.loss(p, t, v, 0.5),
    lambda p, t, v: biv.loss(p, t, v, 0.0),
    lambda p, t, v: biv_adaptive.loss(p, t, v, 0.5),
    lambda p, t, v: cutoff.loss(p, t, v, 1.0),
    lambda p, t, v: compute({"type": "biv", "epsilon": 0.1}, p, t, v),
]


@pytest.mark.parametrize("fn", LOSS_CALLS)
def test_trusted_variances_give_the_same_values_and_gradients(fn):
    pred, target, var = batch(k=32, seed=5)
    checked = fn(pred, target, var)
    g_checked = grad(lambda f: _value(fn(f, target, var)), pred)
    with trusted_variances():
        trusted = fn(pred, target, var)
        g_trusted = grad(lambda f: _value(fn(f, target, var)), pred)
    assert torch.equal(_value(trusted), _value(checked))
    assert torch.equal(g_trusted, g_checked)


def _value(result):
    return result[0] if isinstance(result, tuple) else result


def test_trusted_variances_skip_the_checks_only_inside_the_block():
    bad = torch.tensor([0.5, -1.0, 0.0])
    with trusted_variances():
        assert torch.isfinite(iv.loss(PRED, TARGET, bad.abs() + 1, 0.0))
        biv.loss(PRED, TARGET, bad, 0.5)  # no ValueError: the caller vouches for the variances
        assert cutoff.loss(PRED, TARGET, VAR, 0.1).isnan()  # empty batch: NaN, not None
        with pytest.raises(ValueError, match="var must hold K=3"):
            biv.loss(PRED, TARGET, bad[:2], 0.5)  # shapes are still checked (no device sync)
    with pytest.raises(ValueError, match="var must be finite and >= 0"):
        biv.loss(PRED, TARGET, bad, 0.5)
    assert cutoff.loss(PRED, TARGET, VAR, 0.1) is None


def test_kept_mean_square_without_boolean_indexing_matches_cutoff():
    pred, target, var = batch(k=64, seed=2)
    keep = var < 1.0
    e = pred - target
    torch.testing.assert_close(
        cutoff.kept_mean_square(e, keep), cutoff.loss(pred, target, var, 1.0)
    )
    torch.testing.assert_close(
        grad(lambda f: cutoff.kept_mean_square(f - target, keep), pred),
        grad(lambda f: cutoff.loss(f, target, var, 1.0), pred),
    )
    assert cutoff.kept_mean_square(e, torch.zeros_like(keep)).isnan()


@pytest.mark.parametrize(
    ("spec", "var", "message"),
    [
        ({"type": "mse"}, torch.tensor([1.0, -1.0]), "var must be finite and >= 0, got var[1]"),
        ({"type": "cutoff", "threshold": 1.0}, torch.tensor([math.inf, 1.0]), "got var[0]=inf"),
        ({"type": "biv", "epsilon": 0.0}, torch.tensor([1.0, 0.0]), "epsilon=0.0 needs every var"),
        ({"type": "iv", "epsilon": 0}, torch.tensor([0.0, 2.0]), "got var[0]=0.0: use epsilon > 0"),
        ({"type": "biv_adaptive", "ratio": 0.5}, torch.tensor([math.nan]), "got var[0]=nan"),
    ],
)
def test_check_variances_rejects_what_the_losses_reject(spec, var, message):
    loss = LossSpec.from_config("loss", spec)
    with pytest.raises(ValueError) as err:
        loss.kind.check_variances(loss.params, var)
    assert message in str(err.value)


def test_check_variances_accepts_valid_variances():
    for spec in ({"type": "biv"}, {"type": "biv", "epsilon": 0.0}, {"type": "mse"}):
        loss = LossSpec.from_config("loss", spec)
        loss.kind.check_variances(loss.params, VAR)
    biv.LOSS.check_variances({"epsilon": 0.5}, torch.zeros(3))


def test_cutoff_kept_is_the_cpu_mask_of_kept_samples():
    assert [name for name, kind in registered().items() if kind.kept] == ["cutoff"]
    kept = cutoff.kept({"threshold": 1.5}, VAR.float())
    assert kept.device.type == "cpu" and kept.tolist() == [True, False, False]  # strict
    # a batch is skipped exactly when the cutoff loss would return None
    pred, target, var = batch(k=64, seed=4)
    kept = cutoff.kept({"threshold": 0.3}, var)
    empty = [not kept[lo : lo + 4].any() for lo in range(0, 64, 4)]
    assert 0 < sum(empty) < len(empty)
    for lo, skip in zip(range(0, 64, 4), empty, strict=True):
        rows = slice(lo, lo + 4)
        assert skip == (cutoff.loss(pred[rows], target[rows], var[rows], 0.3) is None)


def test_biv_adaptive_searches_epsilon_on_the_given_host_copy():
    pred, target, var = batch()
    host = var.to(torch.float64).numpy()
    assert biv_adaptive.loss(pred, target, var, 0.7, host) == biv_adaptive.loss(
        pred, target, var, 0.7
    )
    # the search reads the host copy, not the tensor: other host values, another epsilon
    _, eps_other = biv_adaptive.loss(pred, target, var, 0.7, host * 10)
    assert eps_other != biv_adaptive.loss(pred, target, var, 0.7)[1]
