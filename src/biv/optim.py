"""Adam without ``torch.optim.Optimizer``, so that training never imports ``torch._dynamo``.

``torch.optim.Optimizer`` wraps ``add_param_group`` (run by every constructor), ``zero_grad``,
``state_dict`` and ``load_state_dict`` in ``torch._disable_dynamo``, which imports
``torch._dynamo`` on the first call, and every ``step`` in ``_use_grad_for_differentiable``,
which imports it at each call: 1.5 s on an idle 2-core machine (torch 2.14), 3-4 s on a busy
one, although nothing is compiled. No environment setting avoids that import.

:class:`Adam` keeps the per-parameter state in ``torch.optim.Adam``'s layout and calls the
public functional ``torch.optim.adam.adam`` with ``torch.optim.Adam``'s defaults, so a step is
the same computation (single-tensor on the CPU, foreach on CUDA, the capturable variant for CUDA
graphs) and its ``state_dict`` loads into ``torch.optim.Adam`` and back.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor
from torch.optim.adam import adam

#: ``torch.optim.Adam``'s param-group keys and defaults, as written into ``state_dict()``.
_GROUP_DEFAULTS = {
    "weight_decay": 0,
    "amsgrad": False,
    "maximize": False,
    "foreach": None,
    "differentiable": False,
    "fused": None,
    "decoupled_weight_decay": False,
}


class Adam:
    """``torch.optim.Adam(params, lr, betas, eps, capturable=capturable)``, one param group.

    ``capturable=True`` keeps the step counts on the parameters' device, so that ``step`` can
    be captured in a CUDA graph (as ``torch.optim.Adam(capturable=True)``).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        capturable: bool = False,
    ):
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam: no parameters to optimize")
        self.lr, self.betas, self.eps, self.capturable = lr, tuple(betas), eps, capturable
        self.state: list[dict[str, Tensor]] = [{} for _ in self.params]

    def _state(self, i: int) -> dict[str, Tensor]:
        state, p = self.state[i], self.params[i]
        if not state:
            if self.capturable:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            else:
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def init_state(self) -> None:
        """Allocate the state of every parameter now (as the first ``step`` would)."""
        for i in range(len(self.params)):
            self._state(i)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            state = self._state(i)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if not params:
            return
        if not self.capturable and params[0].is_cuda and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("Adam: capturing a step in a CUDA graph needs capturable=True")
        adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            foreach=None,
            capturable=self.capturable,
            differentiable=False,
            fused=None,
            amsgrad=False,
            beta1=self.betas[0],
            beta2=self.betas[1],
            lr=self.lr,
            weight_decay=0,
            eps=self.eps,
            maximize=False,
        )

    def state_dict(self) -> dict:
        """``torch.optim.Adam.state_dict()``'s layout (the tensors themselves, not copies)."""
        group = {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            **_GROUP_DEFAULTS,
            "capturable": self.capturable,
            "params": list(range(len(self.params))),
        }
        state = {i: dict(s) for i, s in enumerate(self.state) if s}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state written by :meth:`state_dict` or by ``torch.optim.Adam`` (one group)."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(
                f"optimizer state of {[len(g['params']) for g in groups]} parameter(s) per group "
                f"does not fit one group of {len(self.params)}"
            )
        group = groups[0]
        self.lr, self.betas, self.eps = group["lr"], tuple(group["betas"]), group["eps"]
        self.state = [{} for _ in self.params]
        for position, index in enumerate(group["params"]):
            saved = state_dict["state"].get(index)
            if not saved:
                continue
            p = self.params[position]
            step = saved["step"]
            self.state[position] = {
                "step": step.to(p.device, torch.float32) if self.capturable else step,
                "exp_avg": saved["exp_avg"].to(p.device, p.dtype),
                "exp_avg_sq": saved["exp_avg_sq"].to(p.device, p.dtype),
            }
