"""Metrics of one training run: accumulated on the device without per-step host syncs, written
as a long-format CSV (step, epoch, split, metric, value) and a summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

CSV_HEADER = "step,epoch,split,metric,value"


def _stack(values: list[torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.stack(values) if values else torch.empty(shape, dtype=dtype)


@dataclass
class RunMetrics:
    """Training loss of every step (model units; 0 at skipped steps), test error sums (sum of
    squared and of absolute errors, model units) at ``eval_steps``, the skipped steps and, for the
    adaptive BIV loss, the epsilon chosen at each step."""

    losses: list[torch.Tensor] = field(default_factory=list)
    test_sums: list[torch.Tensor] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    epsilon: list[tuple[int, float]] = field(default_factory=list)
    checked: int = 0

    def loss_tensor(self) -> torch.Tensor:
        return _stack(self.losses, (0,), torch.float32)

    def sums_tensor(self) -> torch.Tensor:
        return _stack(self.test_sums, (0, 2), torch.float64)

    def first_nonfinite(self) -> tuple[int, float] | None:
        """(step, loss) of the first non-finite training loss not checked yet, or None."""
        new = self.losses[self.checked :]
        if not new:
            return None
        values = torch.stack(new)
        bad = ~torch.isfinite(values)
        if not bool(bad.any()):
            self.checked = len(self.losses)
            return None
        index = int(bad.nonzero()[0, 0])
        return self.checked + index + 1, float(values[index])

    def state_dict(self) -> dict:
        return {
            "losses": self.loss_tensor().cpu(),
            "test_sums": self.sums_tensor().cpu(),
            "eval_steps": list(self.eval_steps),
            "skipped": list(self.skipped),
            "epsilon": [list(p) for p in self.epsilon],
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> RunMetrics:
        losses = list(state["losses"].to(device).unbind())
        return cls(
            losses=losses,
            test_sums=list(state["test_sums"].to(device).unbind()),
            eval_steps=list(state["eval_steps"]),
            skipped=list(state["skipped"]),
            epsilon=[(int(s), float(e)) for s, e in state["epsilon"]],
            checked=len(losses),
        )


@dataclass(frozen=True)
class EvalErrors:
    """Test MSE/MAE at each evaluation, normalized and raw label units (float64 lists)."""

    steps: list[int]
    mse: list[float]
    mae: list[float]
    mse_raw: list[float]
    mae_raw: list[float]


def eval_errors(metrics: RunMetrics, n_test: int, y_std: float, normalize: bool) -> EvalErrors:
    sums = metrics.sums_tensor().cpu().double() / n_test
    mse, mae = sums[:, 0], sums[:, 1]
    if normalize:
        mse_raw, mae_raw = mse * y_std**2, mae * y_std
    else:
        mse_raw, mae_raw = mse, mae
        mse, mae = mse / y_std**2, mae / y_std
    return EvalErrors(
        list(metrics.eval_steps), mse.tolist(), mae.tolist(), mse_raw.tolist(), mae_raw.tolist()
    )


def metrics_csv(
    metrics: RunMetrics, errors: EvalErrors, total_steps: int, steps_per_epoch: int
) -> str:
    """The long-format CSV text: per step ``train,loss`` (or ``train,skipped,1``), optionally
    ``train,epsilon``, then at evaluation steps ``test,{mse,mae,mse_raw,mae_raw}``."""
    losses = metrics.loss_tensor().cpu().tolist()
    skipped = set(metrics.skipped)
    epsilon = dict(metrics.epsilon)
    evals = {s: i for i, s in enumerate(errors.steps)}
    lines = [CSV_HEADER]
    for step in range(1, total_steps + 1):
        prefix = f"{step},{(step - 1) // steps_per_epoch + 1}"
        if step in skipped:
            lines.append(f"{prefix},train,skipped,1")
        else:
            lines.append(f"{prefix},train,loss,{losses[step - 1]:.9g}")
        if step in epsilon:
            lines.append(f"{prefix},train,epsilon,{epsilon[step]!r}")
        i = evals.get(step)
        if i is not None:
            lines.append(f"{prefix},test,mse,{errors.mse[i]!r}")
            lines.append(f"{prefix},test,mae,{errors.mae[i]!r}")
            lines.append(f"{prefix},test,mse_raw,{errors.mse_raw[i]!r}")
            lines.append(f"{prefix},test,mae_raw,{errors.mae_raw[i]!r}")
    return "\n".join(lines) + "\n"


def best_index(values: list[float]) -> int:
    """Index of the smallest finite value (the first on ties); 0 when none is finite."""
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    return min(finite)[1] if finite else 0
