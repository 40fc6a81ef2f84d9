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
    """One run's metrics, as its files are written: the training loss of every step (model
    units; 0 at skipped steps), test error sums (sum of squared and of absolute errors, model
    units) at ``eval_steps``, the skipped steps and, for the adaptive BIV loss, the epsilon
    chosen at each step."""

    losses: list[torch.Tensor] = field(default_factory=list)
    test_sums: list[torch.Tensor] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    epsilon: list[tuple[int, float]] = field(default_factory=list)

    def loss_tensor(self) -> torch.Tensor:
        return _stack(self.losses, (0,), torch.float32)

    def sums_tensor(self) -> torch.Tensor:
        return _stack(self.test_sums, (0, 2), torch.float64)


@dataclass
class PackMetrics:
    """The metrics of a pack of P runs, accumulated on the device without per-step host syncs:
    per step the members' training losses (P,), per evaluation their error sums (P, 2); per
    member its skipped steps and chosen epsilons. :meth:`runs` are the runs' views."""

    members: int
    losses: list[torch.Tensor] = field(default_factory=list)
    test_sums: list[torch.Tensor] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    skipped: list[list[int]] = field(default_factory=list)
    epsilon: list[list[tuple[int, float]]] = field(default_factory=list)
    checked: int = 0

    def __post_init__(self):
        self.skipped = self.skipped or [[] for _ in range(self.members)]
        self.epsilon = self.epsilon or [[] for _ in range(self.members)]

    def loss_tensor(self) -> torch.Tensor:
        return _stack(self.losses, (0, self.members), torch.float32)

    def sums_tensor(self) -> torch.Tensor:
        return _stack(self.test_sums, (0, self.members, 2), torch.float64)

    def runs(self) -> list[RunMetrics]:
        """Each member's metrics, from one stack of the steps for all members."""
        losses, sums = self.loss_tensor(), self.sums_tensor()
        return [
            RunMetrics(
                list(losses[:, m].unbind()),
                list(sums[:, m].unbind()),
                list(self.eval_steps),
                list(self.skipped[m]),
                list(self.epsilon[m]),
            )
            for m in range(self.members)
        ]

    def first_nonfinite(self) -> tuple[int, int, float] | None:
        """(member, step, loss) of the first non-finite training loss not checked yet."""
        new = self.losses[self.checked :]
        if not new:
            return None
        values = torch.stack(new)
        bad = ~torch.isfinite(values)
        if not bool(bad.any()):
            self.checked = len(self.losses)
            return None
        step, member = (int(i) for i in bad.nonzero()[0])
        return member, self.checked + step + 1, float(values[step, member])

    def state_dict(self) -> dict:
        return {
            "members": self.members,
            "losses": self.loss_tensor().cpu(),
            "test_sums": self.sums_tensor().cpu(),
            "eval_steps": list(self.eval_steps),
            "skipped": [list(s) for s in self.skipped],
            "epsilon": [[list(p) for p in e] for e in self.epsilon],
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> PackMetrics:
        losses = list(state["losses"].to(device).unbind())
        return cls(
            members=int(state["members"]),
            losses=losses,
            test_sums=list(state["test_sums"].to(device).unbind()),
            eval_steps=list(state["eval_steps"]),
            skipped=[list(s) for s in state["skipped"]],
            epsilon=[[(int(s), float(e)) for s, e in member] for member in state["epsilon"]],
            checked=len(losses),
        )


@dataclass(frozen=True)
class EvalErrors:
    """Test MSE/MAE against the test labels at each evaluation, normalized and raw label units
    (float64 lists). With noisy test labels, ``test_var_mean_raw`` is the mean of their known
    variances weighted as the logged MSE weights the samples (``weights``, see
    :func:`eval_weights`; None: equal weights), and the clean MSE is estimated as MSE - that
    mean (E[(f - y~)^2] = (f - y)^2 + sigma^2, sample by sample)."""

    steps: list[int]
    mse: list[float]
    mae: list[float]
    mse_raw: list[float]
    mae_raw: list[float]
    y_std: float = 1.0
    test_var_mean_raw: float | None = None
    weights: torch.Tensor | None = None

    @property
    def clean_labels(self) -> bool:
        return self.test_var_mean_raw is None

    @property
    def clean_mse_est_raw(self) -> list[float]:
        return [m - self.test_var_mean_raw for m in self.mse_raw]

    @property
    def clean_mse_est(self) -> list[float]:
        return [m / self.y_std**2 for m in self.clean_mse_est_raw]

    @property
    def scored(self) -> list[float]:
        """The curve tables and figures read (normalized): the clean test MSE, or its estimate."""
        return self.mse if self.clean_labels else self.clean_mse_est

    def csv_fields(self, i: int) -> list[tuple[str, float]]:
        """(metric, value) of evaluation ``i`` as metrics.csv names them (see :data:`METRICS`)."""
        fields = [("mse", self.mse), ("mae", self.mae)]
        fields += [("mse_raw", self.mse_raw), ("mae_raw", self.mae_raw)]
        if self.clean_labels:
            return [(name, values[i]) for name, values in fields]
        fields += [
            ("clean_mse_est", self.clean_mse_est),
            ("clean_mse_est_raw", self.clean_mse_est_raw),
        ]
        return [(_NOISY.get(name, name), values[i]) for name, values in fields]


#: The test metrics of metrics.csv: ``mse``/``mae`` against clean test labels, or, when the test
#: labels are noisy (a table with a variance column and no clean_target), ``noisy_*`` against
#: them and the clean-MSE estimate; ``_raw``: raw label units, else normalized (/ y_std(^2)).
METRICS = {
    "mse": "test MSE against clean test labels",
    "mae": "test MAE against clean test labels",
    "noisy_mse": "test MSE against noisy test labels (biased up by their mean variance)",
    "noisy_mae": "test MAE against noisy test labels",
    "clean_mse_est": "clean test MSE estimated from noisy test labels: noisy_mse minus the mean "
    "of the test labels' known variances, weighted as noisy_mse weights the samples",
}
_NOISY = {name: f"noisy_{name}" for name in ("mse", "mae", "mse_raw", "mae_raw")}


def eval_weights(n_test: int, protocol: str, batch_size: int) -> torch.Tensor:
    """The weight of each test sample in the logged test error (M,), float64, summing to 1:
    1/M under ``training.eval_protocol: standard``; under ``original``, the mean of the per-batch
    means over the K test batches of ``batch_size`` in test-set order (the last one shorter),
    1/(K n_k) for a sample in a batch of n_k."""
    if protocol == "standard":
        return torch.full((n_test,), 1.0 / n_test, dtype=torch.float64)
    if protocol != "original":
        raise ValueError(f"training.eval_protocol: {protocol!r} is not 'standard' or 'original'")
    sizes = torch.tensor([len(c) for c in torch.arange(n_test).split(batch_size)])
    return (1.0 / (len(sizes) * sizes.double())).repeat_interleave(sizes)


def eval_errors(
    metrics: RunMetrics,
    n_test: int,
    y_std: float,
    normalize: bool,
    test_var: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> EvalErrors:
    """Errors of the evaluations; ``test_var``: the known variances (raw units) of noisy test
    labels, None for clean ones; ``weights``: :func:`eval_weights` of the evaluation protocol
    (None: equal weights)."""
    sums = metrics.sums_tensor().cpu().double() / n_test
    mse, mae = sums[:, 0], sums[:, 1]
    if normalize:
        mse_raw, mae_raw = mse * y_std**2, mae * y_std
    else:
        mse_raw, mae_raw = mse, mae
        mse, mae = mse / y_std**2, mae / y_std
    var_mean = None if test_var is None else float(_weighted_mean(test_var.double(), weights))
    return EvalErrors(
        list(metrics.eval_steps),
        mse.tolist(),
        mae.tolist(),
        mse_raw.tolist(),
        mae_raw.tolist(),
        y_std,
        var_mean,
        weights,
    )


def metrics_csv(
    metrics: RunMetrics, errors: EvalErrors, total_steps: int, steps_per_epoch: int
) -> str:
    """The long-format CSV text: per step ``train,loss`` (or ``train,skipped,1``), optionally
    ``train,epsilon``, then at evaluation steps the test metrics of
    :meth:`EvalErrors.csv_fields`."""
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
            lines += [f"{prefix},test,{name},{value!r}" for name, value in errors.csv_fields(i)]
    return "\n".join(lines) + "\n"


def _weighted_mean(terms: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return terms.mean() if weights is None else (weights.double() * terms).sum()


def weighted_mean_se(terms: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """Standard error of the weighted mean sum(w_i t_i) of independent terms (weights summing
    to 1; None: equal): sqrt(M/(M-1) sum(w_i^2 (t_i - mean)^2)), which is the sample standard
    deviation / sqrt(M) for equal weights; NaN for one term."""
    terms = terms.double()
    m = len(terms)
    if m < 2:
        return float("nan")
    w = torch.full_like(terms, 1.0 / m) if weights is None else weights.double()
    spread = (w.square() * (terms - _weighted_mean(terms, w)).square()).sum()
    return float((spread * m / (m - 1)).sqrt())


def clean_mse_est_se(
    y_test: torch.Tensor,
    pred: torch.Tensor,
    test_var: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> float:
    """Standard error over the test set of the clean-MSE estimate sum(w_i ((f - y~)^2 -
    sigma^2)_i) (:func:`weighted_mean_se`; raw units)."""
    return weighted_mean_se((pred.double() - y_test.double()).square() - test_var.double(), weights)


def paired_diff_se(
    y_test: torch.Tensor,
    pred: torch.Tensor,
    pred_base: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> float:
    """Standard error over the test set of the difference of two clean-MSE estimates on the
    same noisy test labels (two losses, one seed): the sigma^2 terms cancel, leaving the
    weighted mean of the per-sample differences (f - y~)^2 - (f_base - y~)^2
    (:func:`weighted_mean_se`; raw units)."""
    y = y_test.double()
    terms = (pred.double() - y).square() - (pred_base.double() - y).square()
    return weighted_mean_se(terms, weights)


def final_scores(
    errors: EvalErrors, y_test: torch.Tensor, pred: torch.Tensor, test_var: torch.Tensor | None
) -> dict:
    """The scores of summary.json: best (by :attr:`EvalErrors.scored`) and final values, named
    by what they measure; ``y_test``, ``pred``: raw test labels and final predictions."""
    best = best_index(errors.scored)
    if errors.clean_labels:
        return {
            "test_labels": "clean",
            "best_test_mse": errors.mse[best],
            "best_step": errors.steps[best],
            "final_test_mse": errors.mse[-1],
            "final_test_mse_raw": errors.mse_raw[-1],
            "final_test_mae_raw": errors.mae_raw[-1],
        }
    se_raw = clean_mse_est_se(y_test, pred, test_var, errors.weights)
    return {
        "test_labels": "noisy",
        "best_clean_mse_est": errors.clean_mse_est[best],
        "best_step": errors.steps[best],
        "final_clean_mse_est": errors.clean_mse_est[-1],
        "final_clean_mse_est_se": se_raw / errors.y_std**2,
        "final_clean_mse_est_raw": errors.clean_mse_est_raw[-1],
        "final_clean_mse_est_se_raw": se_raw,
        "final_noisy_mse_raw": errors.mse_raw[-1],
        "final_noisy_mae_raw": errors.mae_raw[-1],
    }


def predictions_csv(y_test: torch.Tensor, pred: torch.Tensor, test_var: torch.Tensor | None) -> str:
    """predictions.csv: ``index,y_true,y_pred``, or ``index,y_noisy,var,y_pred`` for noisy test
    labels (raw units; index = position in the test split)."""
    labels = [f"{t:.9g}" for t in y_test.tolist()]
    if test_var is None:
        header, middle = "index,y_true,y_pred", labels
    else:
        header = "index,y_noisy,var,y_pred"
        middle = [f"{t},{v!r}" for t, v in zip(labels, test_var.tolist(), strict=True)]
    rows = [f"{i},{m},{p!r}" for i, (m, p) in enumerate(zip(middle, pred.tolist(), strict=True))]
    return header + "\n" + "\n".join(rows) + "\n"


def best_index(values: list[float]) -> int:
    """Index of the smallest finite value (the first on ties); 0 when none is finite."""
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    return min(finite)[1] if finite else 0
