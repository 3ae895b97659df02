"""Atomic, durable file output: write beside the target, fsync it, rename it over the target, then
fsync the directory, so a reader (or a resumed job) never meets a half-written manifest, shard,
chunk marker, checkpoint or report, even after a power loss.

Without the fsyncs a crash can leave the *rename* on disk but not the data (ext4/xfs delayed
allocation): a zero-length or truncated file under the final name. fsync of the temp file before
the rename orders data before name; fsync of the directory after makes the new name itself durable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_file(path: str | Path) -> None:
    """Flush a file's data to stable storage (fsync acts on the inode, so a fresh descriptor works
    for data written through any other handle)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Make the directory's entries (a rename, a new name) durable; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and Windows) refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temp path beside `path` (same file system); when the block succeeds, fsync the temp,
    rename it over `path` and fsync the directory; remove the temp when the block fails. Temp names
    end in `.tmp` so cleanups can find them. durable=False skips the fsyncs (scratch files only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        tmp.replace(path)
        if durable:
            fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
