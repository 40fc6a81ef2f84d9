"""Atomic writes: all or nothing, with the usual file permissions."""

from __future__ import annotations

import os

import pytest

from biv import atomic


def test_write_json_round_trip_and_permissions(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic.write_json(path, {"a": 1})
    assert atomic.read_json(path) == {"a": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "y.txt"

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic.write_atomic(path, fail)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "z.txt"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.atomic_path(path) as tmp:
        tmp.write_text("new")
        raise RuntimeError("boom")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_torch_files_of_the_same_object_are_byte_identical(tmp_path):
    import torch

    obj = {"x": torch.arange(5.0), "meta": {"a": 1}}
    atomic.torch_save(tmp_path / "a.pt", obj)
    atomic.torch_save(tmp_path / "b.pt", obj)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["x"], obj["x"])
