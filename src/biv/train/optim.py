"""Adam for a pack of runs: each member its own step count, moments and update, and a step may
leave members out (a cutoff batch with no kept sample), whose state it does not touch.

Written without ``torch.optim.Optimizer``, which imports ``torch._dynamo`` on the first
``add_param_group``/``zero_grad``/``state_dict`` call and at every ``step`` (1.5 s on an idle
2-core machine, torch 2.14), although nothing is compiled.

The update is ``torch.optim.Adam``'s single-tensor one (defaults: no weight decay, no amsgrad)
with per-member bias corrections computed in float64 from step counts kept on the parameters'
device: the same numbers as ``torch.optim.Adam(capturable=False)`` up to the rounding of the
corrections to the parameters' dtype, and no value is read back to the host, so a step can be
captured in a CUDA graph.
"""

from __future__ import annotations

import torch
from torch import Tensor


class PackAdam:
    """Adam over member-major tensors (member m's values: ``p.view(P, -1)[m]``)."""

    def __init__(
        self,
        params: list[Tensor],
        members: int,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        if not params:
            raise ValueError("PackAdam: no parameters to optimize")
        self.params, self.members = list(params), members
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        device = self.params[0].device
        self.steps = torch.zeros(members, dtype=torch.float64, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, grads: list[Tensor], active: Tensor | None = None) -> None:
        """One update of the members where ``active`` (bool, (P,), on the device) is true; with
        ``active`` None, of every member, in place (no masking: the same numbers, fewer
        operations). Each operation runs on all parameters at once (``torch._foreach_*``: the
        single-tensor kernels, without a Python call per parameter)."""
        beta1, beta2 = self.betas
        self.steps.add_(1.0 if active is None else active.to(self.steps.dtype))
        dtype = self.params[0].dtype
        step_size = (self.lr / (1 - beta1**self.steps)).to(dtype).neg_().unsqueeze(1)
        correction2_sqrt = (1 - beta2**self.steps).sqrt().to(dtype).unsqueeze(1)
        p, grad, m, v = (
            [t.view(self.members, -1) for t in tensors]
            for tensors in (self.params, grads, self.exp_avg, self.exp_avg_sq)
        )
        if active is None:
            new_m, new_v = m, v
            torch._foreach_lerp_(new_m, grad, 1 - beta1)
            torch._foreach_mul_(new_v, beta2)
        else:
            new_m = torch._foreach_lerp(m, grad, 1 - beta1)
            new_v = torch._foreach_mul(v, beta2)
        torch._foreach_addcmul_(new_v, grad, grad, value=1 - beta2)
        denom = torch._foreach_sqrt(new_v)
        torch._foreach_div_(denom, [correction2_sqrt] * len(p))
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_mul(new_m, [step_size] * len(p))
        if active is None:
            torch._foreach_addcdiv_(p, update, denom)
            return
        new_p = torch._foreach_addcdiv(p, update, denom)
        keep = active.unsqueeze(1)
        for old, new in ((m, new_m), (v, new_v), (p, new_p)):
            for tensor, value in zip(old, new, strict=True):
                tensor.copy_(torch.where(keep, value, tensor))

    def state_dict(self) -> dict:
        return {"steps": self.steps, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict) -> None:
        """Load what :meth:`state_dict` wrote for parameters of the same shapes."""
        shapes = [tuple(p.shape) for p in self.params]
        for key in ("exp_avg", "exp_avg_sq"):
            if [tuple(t.shape) for t in state[key]] != shapes:
                raise ValueError(f"optimizer state {key!r} does not fit parameters {shapes}")
        if tuple(state["steps"].shape) != (self.members,):
            raise ValueError(f"optimizer step counts do not fit {self.members} members")
        self.steps = state["steps"].to(self.steps.device, torch.float64)
        saved = state["exp_avg"] + state["exp_avg_sq"]
        for mine, value in zip(self.exp_avg + self.exp_avg_sq, saved, strict=True):
            mine.copy_(value)
