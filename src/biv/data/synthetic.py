"""The embedded synthetic data set: no download, deterministic from ``seed``.

Inputs x ~ U(-1, 1)^d (d = ``n_features`` >= 8, default 8); the clean label uses x0..x7 only
(further features are irrelevant inputs)::

    f(x) = sin(pi*x0*x1) + 1.5*x2**2 - 0.5 + x3*x4 + tanh(2*x5) + 0.5*cos(pi*x6) + 0.5*x7

Labels have mean about 0 and std about 1.2 (range about [-4, 4]); they carry no noise (noise is
added later by ``biv.noise.draws``). Train and test samples come from two independent streams
(``numpy.random.default_rng([seed, 0])`` and ``[seed, 1]``), so the test set does not depend on
``n_train``; ``train_index``/``test_index`` are the draw numbers within each stream.
"""

from __future__ import annotations

import numpy as np

from biv.config.dataset import SyntheticConfig
from biv.data.prepared import assemble

FUNCTION = (
    "sin(pi*x0*x1) + 1.5*x2**2 - 0.5 + x3*x4 + tanh(2*x5) + 0.5*cos(pi*x6) + 0.5*x7, "
    "x ~ U(-1, 1)^n_features"
)


def target(x: np.ndarray) -> np.ndarray:
    """The clean label f(x) of the module docstring, for x of shape (N, >=8)."""
    return (
        np.sin(np.pi * x[:, 0] * x[:, 1])
        + 1.5 * x[:, 2] ** 2
        - 0.5
        + x[:, 3] * x[:, 4]
        + np.tanh(2 * x[:, 5])
        + 0.5 * np.cos(np.pi * x[:, 6])
        + 0.5 * x[:, 7]
    )


def sample(seed: int, stream: int, n: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws (float32 inputs, float32 labels) of stream 0 (train) or 1 (test)."""
    x = np.random.default_rng([seed, stream]).uniform(-1.0, 1.0, size=(n, n_features))
    return x.astype(np.float32), target(x).astype(np.float32)


def prepare(name: str, cfg: SyntheticConfig) -> dict:
    """Generate train and test sets per ``cfg``; return the prepared dict."""
    x_train, y_train = sample(cfg.seed, 0, cfg.n_train, cfg.n_features)
    x_test, y_test = sample(cfg.seed, 1, cfg.n_test, cfg.n_features)
    meta = {
        "dataset": name,
        "kind": "synthetic",
        "sources": [],
        "split_seed": cfg.split_seed,
        "feature_names": [f"x{i}" for i in range(cfg.n_features)],
        "target": "f(x)",
        "function": FUNCTION,
        "index": "draw number within the train (stream 0) or test (stream 1) stream",
        "config": cfg.to_dict(),
    }
    return assemble(
        x_train,
        y_train,
        x_test,
        y_test,
        np.arange(len(y_train)),
        np.arange(len(y_test)),
        meta,
    )
