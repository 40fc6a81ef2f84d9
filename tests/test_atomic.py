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
