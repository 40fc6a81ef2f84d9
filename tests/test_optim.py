"""biv.train.optim.PackAdam: each member's update is torch.optim.Adam's, bit for bit in float32; a
member left out of a step keeps its state; the state survives a reload."""

from __future__ import annotations

import pytest
import torch

from biv.train.optim import PackAdam

MEMBERS, SHAPES = 3, [(3, 4, 5), (3, 4)]


def _run(dtype: torch.dtype, steps: int = 40, reload_at: int | None = None, sit_out: float = 0.3):
    """PackAdam on stacked tensors and one torch.optim.Adam per member, fed the same gradients;
    a member sits a step out with probability ``sit_out`` (a step of every member is given as
    ``active=None``: the update in place). Returns both sets of final values."""
    gen = torch.Generator().manual_seed(0)
    stacked = [torch.randn(shape, generator=gen, dtype=dtype) for shape in SHAPES]
    solo = [[t[m].clone().requires_grad_() for t in stacked] for m in range(MEMBERS)]
    torch_adams = [torch.optim.Adam(params, lr=0.01) for params in solo]
    pack = PackAdam(stacked, MEMBERS, lr=0.01)
    for step in range(steps):
        grads = [torch.randn(shape, generator=gen, dtype=dtype) for shape in SHAPES]
        active = torch.rand(MEMBERS, generator=gen) >= sit_out
        pack.step(grads, None if bool(active.all()) else active)
        for m in range(MEMBERS):
            if active[m]:
                for p, g in zip(solo[m], grads, strict=True):
                    p.grad = g[m].clone()
                torch_adams[m].step()
        if step == reload_at:
            state = pack.state_dict()
            pack = PackAdam(stacked, MEMBERS, lr=0.01)
            pack.load_state_dict(state)
    return stacked, solo


def test_each_member_steps_as_torch_adam_bit_for_bit_in_float32():
    stacked, solo = _run(torch.float32)
    for m in range(MEMBERS):
        for t, p in zip(stacked, solo[m], strict=True):
            assert torch.equal(t[m], p.detach())


def test_steps_of_every_member_in_place_are_torch_adams_bit_for_bit():
    stacked, solo = _run(torch.float32, sit_out=0.0)
    for m in range(MEMBERS):
        for t, p in zip(stacked, solo[m], strict=True):
            assert torch.equal(t[m], p.detach())


def test_float64_agrees_with_torch_adam_to_rounding():
    """In float64 the bias corrections (float64 tensors here, Python floats in torch) may differ
    in the last bit: 1e-15 relative."""
    stacked, solo = _run(torch.float64)
    for m in range(MEMBERS):
        for t, p in zip(stacked, solo[m], strict=True):
            torch.testing.assert_close(t[m], p.detach(), rtol=1e-15, atol=1e-15)


def test_reloading_the_state_changes_nothing():
    straight, _ = _run(torch.float32)
    reloaded, _ = _run(torch.float32, reload_at=17)
    assert all(torch.equal(a, b) for a, b in zip(straight, reloaded, strict=True))


def test_a_state_of_other_parameters_is_refused():
    state = PackAdam([torch.zeros(3, 2)], 3, lr=0.1).state_dict()
    with pytest.raises(ValueError, match="does not fit parameters"):
        PackAdam([torch.zeros(3, 4)], 3, lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="do not fit 2 members"):
        PackAdam([torch.zeros(2, 2)], 2, lr=0.1).load_state_dict(
            {**state, "exp_avg": [torch.zeros(2, 2)], "exp_avg_sq": [torch.zeros(2, 2)]}
        )
