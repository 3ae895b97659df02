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


def test_data_is_fsynced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch) -> None:
    """Durability order (DESIGN §7): temp data on disk, then the name, then the directory entry."""
    import os
    import stat
    from pathlib import Path

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, Path.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append((kind, os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(self: Path, target):
        events.append(("rename", str(target)))
        return real_replace(self, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    target = tmp_path / "shard.tar"
    atomic_write_bytes(target, b"x" * 10)
    kinds = [kind for kind, _ in events]
    assert kinds == ["file", "rename", "dir"], events
    assert events[0][1].endswith(".tmp") and events[2][1] == str(tmp_path)
    assert target.read_bytes() == b"x" * 10
