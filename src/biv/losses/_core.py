"""What every loss module uses: :class:`LossType` (a module's declaration), :class:`LossResult`,
the checks of inputs and parameters, and :class:`trusted_variances`.

Nothing here imports torch at import time: the functions that need it are given tensors (and
import it when they run), so that planning a workflow, which reads the declarations, stays
torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from torch import Tensor


class ParameterError(ValueError):
    """A parameter value its JSON-schema fragment does not allow: ``name: problem``."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name, self.problem = name, problem


class LossResult(NamedTuple):
    """``value``: the loss (``None``: skip this step); ``epsilon``: the epsilon used, if any."""

    value: Tensor | None
    epsilon: float | None


@dataclass(frozen=True)
class LossType:
    """A registered loss type, declared by its module of :mod:`biv.losses` as ``LOSS``.

    ``parameters``: each parameter's JSON-schema fragment (type, range, default; no default:
    required), the one place of them; ``x-inf-allowed: true`` lets a number be infinite.
    ``compute(pred, target, var, params, var_host)``: the batch's :class:`LossResult`.
    What the training loop does for it, declared here:

    * ``host_variances``: ``compute`` reads ``var_host``, the batch's variances as float64 on the
      host (else it is passed None); such a loss does its work on the host at every step;
    * ``chooses_epsilon``: its epsilon is chosen per batch and recorded at every step;
    * ``kept(params, var)``: the CPU mask of the samples it keeps; a batch keeping none is
      skipped (None: the loss never skips a batch);
    * ``raw_units``: the parameters given in raw label units squared, divided by y_std**2 for
      normalized labels;
    * ``variance_offset``: the parameter eps of weights 1/(var + eps): eps = 0 needs var > 0.
    """

    name: str
    description: str
    parameters: Mapping[str, dict[str, Any]]
    compute: Callable[..., LossResult]
    host_variances: bool = False
    chooses_epsilon: bool = False
    kept: Callable[[Mapping[str, Any], Tensor], Tensor] | None = None
    raw_units: tuple[str, ...] = ()
    variance_offset: str | None = None

    def parse(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` (every parameter, defaults filled) checked against their fragments, in
        declared order; :class:`ParameterError` naming the parameter."""
        return {name: parameter(name, frag, params[name]) for name, frag in self.parameters.items()}

    def check_variances(self, params: Mapping[str, Any], var: Tensor) -> None:
        """Check once what ``compute`` checks at every call outside :class:`trusted_variances`:
        var finite and >= 0, and > 0 where the ``variance_offset`` is 0. Raises ValueError."""
        var = check_var(var, len(flat("var", var)))
        if self.variance_offset is not None:
            check_offset(params[self.variance_offset], var)


def parameter(name: str, fragment: Mapping[str, Any], value: object) -> Any:
    """``value`` if the JSON-schema ``fragment`` of a number or integer allows it (never NaN;
    infinite only with ``x-inf-allowed``), as a float or int; else :class:`ParameterError`."""
    integer = fragment["type"] == "integer"
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and not (integer and not isinstance(value, int)) and not math.isnan(value)
    ok = ok and (math.isfinite(value) or bool(fragment.get("x-inf-allowed")))
    bounds = [
        ("minimum", ">=", lambda x, b: x >= b),
        ("exclusiveMinimum", ">", lambda x, b: x > b),
        ("maximum", "<=", lambda x, b: x <= b),
        ("exclusiveMaximum", "<", lambda x, b: x < b),
    ]
    ok = ok and all(holds(value, fragment[k]) for k, _, holds in bounds if k in fragment)
    if not ok:
        finite = "" if fragment.get("x-inf-allowed") else "finite "
        what = f"{finite}{'integer' if integer else 'number'}"
        limits = " and ".join(f"{op} {fragment[k]:g}" for k, op, _ in bounds if k in fragment)
        raise ParameterError(name, f"{value!r} is not allowed; expected a {what} {limits}".rstrip())
    return int(value) if integer else float(value)


_TRUSTED: ContextVar[bool] = ContextVar("biv_losses_trusted", default=False)


class trusted_variances:  # noqa: N801 (used like a function: ``with trusted_variances():``)
    """Within this block the losses skip the value checks of sigma^2 (finite, >= 0, > 0 for
    epsilon = 0) and the cutoff loss its empty-batch check, which would wait for the device.

    For a caller that has run :meth:`LossType.check_variances` on every sigma^2 it will pass and
    skips the batches that :attr:`LossType.kept` shows to be empty: there the cutoff value is NaN.
    """

    def __enter__(self) -> None:
        self._token = _TRUSTED.set(True)

    def __exit__(self, *exc: object) -> None:
        _TRUSTED.reset(self._token)


def trusted() -> bool:
    """Whether the caller is inside :class:`trusted_variances`."""
    return _TRUSTED.get()


def flat(name: str, x: Tensor) -> Tensor:
    """``x`` of shape (K,) or (K, 1) as (K,); ValueError for anything else."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (K,) or (K, 1), got {type(x)}")
    if x.ndim == 2 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape (K,) or (K, 1), got {tuple(x.shape)}")
    return x


def check_var(var: Tensor, k: int) -> Tensor:
    """``var`` flattened, K values, each finite and >= 0; else ValueError."""
    import torch

    var = flat("var", var)
    if len(var) != k or k == 0:
        raise ValueError(f"var must hold K={k} >= 1 values like pred, got {len(var)}")
    bad = ~(torch.isfinite(var) & (var >= 0))
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"var must be finite and >= 0, got var[{i}]={float(var[i])!r}")
    return var


def prepare(pred: Tensor, target: Tensor, var: Tensor | None = None):
    """Flatten the inputs, check their lengths and (outside :class:`trusted_variances`) the
    variances' values; return (e = pred - target, var in e's dtype or None)."""
    pred, target = flat("pred", pred), flat("target", target)
    if len(pred) == 0 or len(target) != len(pred):
        raise ValueError(
            f"pred and target must hold the same number K >= 1 of samples, "
            f"got {len(pred)} and {len(target)}"
        )
    e = pred - target
    if var is None:
        return e, None
    if trusted():
        var = flat("var", var)
        if len(var) != len(e):
            raise ValueError(f"var must hold K={len(e)} >= 1 values like pred, got {len(var)}")
        return e, var.to(e.dtype)
    return e, check_var(var, len(e)).to(e.dtype)


def check_offset(eps: float, var: Tensor) -> None:
    """Weights 1/(var + eps) with eps = 0 need every var > 0 (outside
    :class:`trusted_variances`); else ValueError."""
    if eps == 0 and not trusted():
        zero = var == 0
        if zero.any():
            i = int(zero.nonzero()[0, 0])
            raise ValueError(
                f"epsilon=0.0 needs every var > 0 (weights 1/(var + epsilon)), "
                f"got var[{i}]=0.0: use epsilon > 0"
            )
