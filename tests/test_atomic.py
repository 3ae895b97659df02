"""Atomic writes: the target appears whole or not at all, and no temp file is left behind."""

from __future__ import annotations

import pytest

from genimage_fast.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def test_write_replaces_whole_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "sub" / "manifest.json"
    atomic_write_text(target, "old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["manifest.json"]


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
