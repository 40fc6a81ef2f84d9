"""The embedded synthetic data set: documented function, determinism, prepared-file layout."""

from __future__ import annotations

import math

import numpy as np
import torch

from biv.data import load_prepared, prepare
from biv.data.synthetic import target

CFG = {"kind": "synthetic", "n_train": 3000, "n_test": 500, "seed": 7}


def make(tmp_path, cfg=CFG, name="syn"):
    out = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.npz"
    meta = prepare(name, cfg, out)
    return load_prepared(out), meta, out


def test_layout_and_documented_function(tmp_path):
    d, meta, out = make(tmp_path)
    assert d["x_train"].shape == (3000, 8) and d["x_test"].shape == (500, 8)
    assert d["x_train"].dtype == d["y_test"].dtype == d["x_std"].dtype == torch.float32
    assert set(d) == {
        "x_train", "y_train", "x_test", "y_test", "x_mean", "x_std", "y_mean", "y_std",
        "train_index", "test_index", "meta",
    }  # fmt: skip
    assert meta == d["meta"] and meta["kind"] == "synthetic" and meta["dataset"] == "syn"
    assert meta["feature_names"] == [f"x{i}" for i in range(8)] and meta["split_seed"] == 0
    assert meta["config"] == {**CFG, "n_features": 8, "split_seed": 0}
    assert load_prepared(out)["meta"]["n_test"] == 500
    x = d["x_test"][0].double().tolist()
    expected = (
        math.sin(math.pi * x[0] * x[1]) + 1.5 * x[2] ** 2 - 0.5 + x[3] * x[4]
        + math.tanh(2 * x[5]) + 0.5 * math.cos(math.pi * x[6]) + 0.5 * x[7]
    )  # fmt: skip
    assert abs(d["y_test"][0].item() - expected) < 1e-5
    assert d["x_train"].min() >= -1 and d["x_train"].max() <= 1
    assert 0.9 < d["y_std"] < 1.5 and abs(d["y_mean"]) < 0.1  # unit-ish labels
    np.testing.assert_allclose(d["x_mean"], d["x_train"].double().mean(0), rtol=1e-5)


def test_deterministic_and_seeded(tmp_path):
    a, _, _ = make(tmp_path)
    b, _, _ = make(tmp_path)
    for key in ("x_train", "y_train", "x_test", "y_test", "x_mean", "x_std"):
        x, y = a[key], b[key]
        assert (x.dtype, x.shape) == (y.dtype, y.shape), key
        assert x.numpy().tobytes() == y.numpy().tobytes(), key  # byte-identical
    c, _, _ = make(tmp_path, {**CFG, "seed": 8})
    assert not torch.equal(a["x_train"], c["x_train"])
    d, _, _ = make(tmp_path, {**CFG, "n_train": 1000, "n_features": 10})
    labels = target(d["x_test"].double().numpy())  # features x8, x9 are irrelevant
    np.testing.assert_allclose(d["y_test"], labels, atol=1e-5)
    e, _, _ = make(tmp_path, {**CFG, "n_train": 1000})
    assert torch.equal(e["x_test"], a["x_test"])  # the test set does not depend on n_train
    assert torch.equal(e["x_train"], a["x_train"][:1000])
    assert d["x_train"].shape == (1000, 10)
