"""``kind: table``: a user's CSV/Parquet table read, checked and prepared; every bad input is a
ConfigError naming the dataset key, the column and (for a cell) the row, raised by the plan."""

from __future__ import annotations

import gzip
import hashlib
import math

import numpy as np
import pandas as pd
import pytest
import torch

from biv.config import RunSpec
from biv.config.errors import ConfigError
from biv.data import load_prepared, prepare
from biv.train.run_data import load_run_data
from biv.workflow.plan import checked_plan
from biv.workflow.rule_params import run_spec

ROWS = 40


def frame(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, rows), rng.uniform(0, 5, rows)
    clean = 2 * a + b
    var = np.where(np.arange(rows) % 2 == 0, 0.01, 4.0)
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "site": np.array(["x", "y", "z", "x"] * (rows // 4)),
            "y_true": clean,
            "y_var": var,
            "y": clean + rng.normal(size=rows) * np.sqrt(var),
        }
    )


def write(tmp_path, table: pd.DataFrame, name: str = "t.csv") -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False)
    return str(path)


def config(dataset: dict, noise: bool = False) -> dict:
    experiment = {
        "dataset": "mine",
        "model": "mlp",
        "losses": ["l2", "biv"],
        "seeds": [1],
        "training": {"batch_size": 4, "epochs": 1},
    }
    cfg = {
        "datasets": {"mine": {"kind": "table", "test_size": 0.25, **dataset}},
        "models": {"mlp": {"name": "mlp", "hidden": [4]}},
        "losses": {"l2": {"type": "mse"}, "biv": {"type": "biv", "epsilon": 0.5}},
        "experiments": {"e": experiment},
    }
    if noise:
        cfg["noise"] = {"n": {"mode": "boundaries", "components": [{"a": 0, "b": 1}]}}
        experiment["noise"] = "n"
    return cfg


def error(tmp_path, table: pd.DataFrame | bytes, noise: bool = False, name="t.csv", **keys):
    if isinstance(table, bytes):
        (tmp_path / name).write_bytes(table)
        path = str(tmp_path / name)
    else:
        path = write(tmp_path, table, name)
    dataset = {"path": path, "target": "y", **keys}
    with pytest.raises(ConfigError) as err:
        checked_plan(config(dataset, noise))
    return str(err.value)


def with_cell(column: str, row: int, value) -> pd.DataFrame:
    table = frame().astype({column: object})
    table.loc[row, column] = value
    return table


# ------------------------------------------------------------------------------ bad input


def test_missing_column_names_the_key_and_the_columns(tmp_path):
    message = error(tmp_path, frame(), variance="y_sd")
    assert message.startswith("datasets.mine.variance: column 'y_sd' is not in ")
    assert "'y_var'" in message  # the columns there are
    message = error(tmp_path, frame(), features=["a", "c"])
    assert message.startswith("datasets.mine.features[1]: column 'c' is not in ")
    message = error(tmp_path, frame().drop(columns="y"))
    assert message.startswith("datasets.mine.target: column 'y' is not in ")


def test_a_column_in_two_roles(tmp_path):
    message = error(tmp_path, frame(), variance="y")
    assert message == "datasets.mine.variance: column 'y' is also datasets.mine.target"
    message = error(tmp_path, frame(), features=["a", "y_var"], variance="y_var")
    assert message.startswith("datasets.mine.features[1]: column 'y_var' already has another role")


def test_text_in_a_feature_not_declared_categorical(tmp_path):
    message = error(tmp_path, frame(), features=["a", "site"])
    assert message.startswith("datasets.mine.features[1]: column 'site', row 0 (line 2) of ")
    assert "'x' is not a finite number; a text column must be listed in" in message
    assert "datasets.mine.categorical" in message
    # by default a column mixing numbers and text is an error, not silently dropped
    message = error(tmp_path, with_cell("b", 7, "n/a"))
    assert message.startswith("datasets.mine.features: column 'b' (a default feature")
    assert "mixes numbers and text: row 7 (line 9) of" in message and "'n/a'" in message


@pytest.mark.parametrize(
    ("value", "problem"),
    [("", "is empty"), ("nan", "'nan' is not a finite number"), (-0.5, "-0.5 is negative")],
)
def test_nan_or_negative_variance_names_the_row(tmp_path, value, problem):
    message = error(tmp_path, with_cell("y_var", 13, value), variance="y_var")
    assert message.startswith("datasets.mine.variance: column 'y_var', row 13 (line 15) of ")
    assert problem in message


def test_empty_label_cell(tmp_path):
    message = error(tmp_path, with_cell("y", 3, ""))
    assert message.startswith("datasets.mine.target: column 'y', row 3 (line 5) of ")
    assert message.endswith("is empty")


def test_constant_feature_or_target(tmp_path):
    message = error(tmp_path, frame().assign(b=1.5), features=["a", "b"])
    assert message.startswith("datasets.mine.features[1]: column 'b' of ")
    assert "is constant on the training split (every value 1.5)" in message
    message = error(tmp_path, frame().assign(y=2.0))
    assert message.startswith("datasets.mine.target: column 'y' of ")
    assert "constant on the training split" in message


@pytest.mark.parametrize(
    ("keys", "needles"),
    [
        ({"test_size": ROWS}, ["datasets.mine.test_size: 40 leaves the training split", "empty"]),
        ({"test_size": 0.01}, ["datasets.mine.test_size: 0.01 leaves the test split", "empty"]),
    ],
)
def test_empty_split_by_size(tmp_path, keys, needles):
    message = error(tmp_path, frame(), **keys)
    for needle in needles:
        assert needle in message


def test_split_column(tmp_path):
    table = frame().assign(part="train")
    message = error(tmp_path, table, split="part", test_size=None)
    assert message.startswith("datasets.mine.split: column 'part' of ")
    assert message.endswith("leaves the test split empty")
    table.loc[5, "part"] = "valid"
    message = error(tmp_path, table, split="part", test_size=None)
    assert message.startswith("datasets.mine.split: column 'part', row 5 (line 7) of ")
    assert "'valid' is neither 'train' nor 'test'" in message


def test_unseen_categorical_level_in_the_test_split(tmp_path):
    table = frame().assign(part=["train"] * 30 + ["test"] * 10)
    table.loc[35, "site"] = "w"
    message = error(tmp_path, table, split="part", test_size=None, categorical=["site"])
    assert message.startswith("datasets.mine.categorical[0]: column 'site', row 35 (line 37)")
    assert "'w' does not occur in the training split" in message


@pytest.mark.parametrize(
    ("data", "name", "needle"),
    [
        (b'a,y\n1,2\n3,4,5,6\n"', "t.csv", "does not parse as a comma-separated table"),
        (b"not gzip at all", "t.csv.gz", "does not parse as a comma-separated table"),
        (b"PAR1 damaged", "t.parquet", "does not parse as Parquet"),
        (b"", "t.csv", "does not parse as a comma-separated table"),
    ],
)
def test_a_file_that_does_not_parse(tmp_path, data, name, needle):
    message = error(tmp_path, data, name=name)
    assert message.startswith(f"datasets.mine.path: {tmp_path / name} {needle}")


def test_bad_keys_fail_before_reading(tmp_path):
    for keys, needle in (
        ({"path": "t.xlsx"}, "datasets.mine.path: 't.xlsx' is not allowed; expected a file end"),
        ({"split": "part"}, "datasets.mine: needs exactly one of test_size"),
        ({"test_size": 1.5}, "datasets.mine.test_size: 1.5 is not allowed"),
        ({"features": []}, "datasets.mine.features: [] is not allowed"),
        ({"sha256": {"u.csv": "ab" * 32}}, "datasets.mine.sha256.u.csv"),
    ):
        with pytest.raises(ConfigError) as err:
            checked_plan(config({"path": "t.csv", "target": "y", **keys}))
        assert str(err.value).startswith(needle)
    message = error(tmp_path, frame(), sha256={"t.csv": "ab" * 32})
    assert message.startswith("datasets.mine.sha256.t.csv: ") and "not the expected" in message


def test_noise_key_needs_clean_labels(tmp_path):
    message = error(tmp_path, frame(), noise=True, variance="y_var")
    assert message.startswith("experiments.e.noise: 'n' is not allowed; dataset 'mine' has its")
    assert "datasets.mine.clean_target" in message


def test_missing_pyarrow_is_named(tmp_path, monkeypatch):
    def no_pyarrow(*args, **kwargs):
        raise ImportError("no pyarrow")

    monkeypatch.setattr(pd, "read_parquet", no_pyarrow)
    message = error(tmp_path, b"PAR1", name="u.parquet")
    assert "pip install 'biv-pipeline[parquet]'" in message


# ------------------------------------------------------------------------------- prepared


def plan_and_prepare(tmp_path, dataset: dict, noise: bool = False):
    plan = checked_plan(config(dataset, noise))
    out = tmp_path / "mine.npz"
    prepare("mine", plan.datasets["mine"].config.to_dict(), out)
    return plan, load_prepared(out)


def test_prepared_table_one_hot_train_statistics_and_file_noise(tmp_path):
    table = frame()
    path = write(tmp_path, table)
    keys = {"path": path, "target": "y", "variance": "y_var", "categorical": ["site"]}
    keys["features"] = ["a", "b"]  # by default y_true would be a feature too
    plan, data = plan_and_prepare(tmp_path, keys)
    train, test = data["train_index"].numpy(), data["test_index"].numpy()
    assert (len(train), len(test)) == (30, 10) and plan.datasets["mine"].n_train == 30
    assert sorted([*train, *test]) == list(range(ROWS))
    meta = data["meta"]
    assert meta["feature_names"] == ["a", "b", "site=x", "site=y", "site=z"]
    assert meta["unused_columns"] == [] and meta["test_labels"] == "noisy"
    assert (
        meta["sources"][0]["sha256"]
        == hashlib.sha256((tmp_path / "t.csv").read_bytes()).hexdigest()
    )
    x = data["x_train"].numpy()
    np.testing.assert_allclose(x[:, 0], table["a"].to_numpy()[train], rtol=1e-6)
    np.testing.assert_array_equal(x[:, 2], (table["site"].to_numpy()[train] == "x"))
    np.testing.assert_allclose(
        data["x_mean"][:2], table[["a", "b"]].to_numpy()[train].mean(0), rtol=1e-5
    )
    assert data["y_std"] == pytest.approx(table["y"].to_numpy()[train].std(), rel=1e-6)
    np.testing.assert_allclose(data["var_train"], table["y_var"].to_numpy()[train], rtol=1e-6)
    np.testing.assert_allclose(data["var_test"], table["y_var"].to_numpy()[test], rtol=1e-6)
    np.testing.assert_allclose(data["y_test"], table["y"].to_numpy()[test], rtol=1e-6)

    # every loss of the seed trains on the file's labels; variances / y_std^2 like the paper's
    run = RunSpec.from_dict(
        run_spec(plan, "e", "biv", 1, str(tmp_path / "mine.npz"), None).to_dict()
    )
    other = RunSpec.from_dict(
        run_spec(plan, "e", "l2", 1, str(tmp_path / "mine.npz"), None).to_dict()
    )
    loaded = load_run_data([run, other], torch.device("cpu"))
    y_std, y_mean = data["y_std"], data["y_mean"]
    np.testing.assert_allclose(
        loaded.y_train[0], (table["y"].to_numpy()[train] - y_mean) / y_std, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.var_train[0], table["y_var"].to_numpy()[train] / y_std**2, rtol=1e-5, atol=1e-6
    )
    assert not loaded.clean_test_labels
    # every loss of the seed: the same labels and variances
    assert torch.equal(loaded.y_train[1], loaded.y_train[0])
    assert torch.equal(loaded.var_train[1], loaded.var_train[0])


def test_clean_target_is_scored_and_takes_the_noise(tmp_path):
    path = write(tmp_path, frame())
    keys = {"path": path, "target": "y", "variance": "y_var", "clean_target": "y_true"}
    plan, data = plan_and_prepare(tmp_path, keys, noise=True)
    test = data["test_index"].numpy()
    np.testing.assert_allclose(data["y_test"], frame()["y_true"].to_numpy()[test], rtol=1e-6)
    assert "var_test" not in data and data["meta"]["test_labels"] == "clean"
    assert plan.noise_settings() == [("mine", "n")]
    # the default features leave the text column out, and say so
    assert data["meta"]["feature_names"] == ["a", "b"]
    assert data["meta"]["unused_columns"] == ["site"]


@pytest.mark.parametrize("name", ["t.csv.gz", "t.parquet"])
def test_gzip_and_parquet_read_like_csv(tmp_path, name):
    table = frame()
    if name.endswith(".gz"):
        (tmp_path / name).write_bytes(gzip.compress(table.to_csv(index=False).encode()))
    else:
        write(tmp_path, table, name)
    reference = tmp_path / "ref"
    reference.mkdir()
    _, want = plan_and_prepare(reference, {"path": write(reference, table), "target": "y"})
    _, got = plan_and_prepare(tmp_path, {"path": str(tmp_path / name), "target": "y"})
    for key in ("x_train", "x_test", "y_train", "y_test", "train_index", "test_index"):
        torch.testing.assert_close(got[key], want[key])


def test_split_column_fixes_the_split(tmp_path):
    table = frame().assign(part=["test", "train", "train", "train"] * (ROWS // 4))
    path = write(tmp_path, table)
    keys = {"path": path, "target": "y", "split": "part", "test_size": None}
    _, data = plan_and_prepare(tmp_path, keys)
    assert data["test_index"].tolist() == list(range(0, ROWS, 4))
    assert math.isclose(data["meta"]["n_train"], 30)
