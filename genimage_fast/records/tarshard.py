"""Webdataset tar shards with DALI index files, written deterministically and read by offset.

A shard holds, per sample, `KEY.jpg|png|raw` then `KEY.json` (ustar members, mtime 0, so the same
input gives the same bytes and a resumed convert ends with identical files). The `.idx` beside it is
DALI's wds2idx format v1.2: a line `v1.2 N`, then per sample `ext offset size name ...` for each of
its members, offsets pointing at the member's data (header offset + 512).
"""

from __future__ import annotations

import hashlib
import io
import json
import mmap
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genimage_fast.atomic import atomic_path, atomic_write_bytes
from genimage_fast.records.imageio import EXTENSION_KINDS, KIND_EXTENSIONS

TAR_BLOCK = 512
IDX_VERSION = "v1.2"


@dataclass
class Record:
    """One converted sample: its key (source index in the split), payload and JSON metadata."""

    key: int
    kind: str  # jpeg | png | raw
    payload: bytes | np.ndarray
    meta: dict[str, Any]


def key_name(key: int) -> str:
    """Zero-padded, dot-free webdataset key."""
    return f"{key:09d}"


def payload_bytes(kind: str, payload: bytes | np.ndarray) -> bytes:
    return np.ascontiguousarray(payload, dtype=np.uint8).tobytes() if kind == "raw" else bytes(payload)


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid = size, 0, 0o644, 0, 0
    info.uname = info.gname = ""
    return info


def write_shard(path: Path, records: list[Record]) -> tuple[str, str]:
    """Write the tar and its .idx (each via .tmp + rename, index first); return both sha256s."""
    index_lines: list[str] = []
    digest = hashlib.sha256()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw, tarfile.open(fileobj=_HashingWriter(raw, digest), mode="w",
                                                  format=tarfile.USTAR_FORMAT) as tar:
            for record in records:
                parts = []
                meta = json.dumps(record.meta, sort_keys=True).encode()
                for ext, data in ((KIND_EXTENSIONS[record.kind], payload_bytes(record.kind, record.payload)),
                                  ("json", meta)):
                    name = f"{key_name(record.key)}.{ext}"
                    offset = tar.offset + TAR_BLOCK  # ustar header for a short name is one block
                    tar.addfile(_member(name, len(data)), io.BytesIO(data))
                    parts.append(f"{ext} {offset} {len(data)} {name}")
                index_lines.append(" ".join(parts))
        index_text = (f"{IDX_VERSION} {len(records)}\n" + "".join(line + "\n" for line in index_lines)).encode()
        atomic_write_bytes(path.with_suffix(".idx"), index_text)  # the index first, then the shard
    return digest.hexdigest(), hashlib.sha256(index_text).hexdigest()


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through (saves re-reading a GB shard)."""

    def __init__(self, target: io.BufferedWriter, digest: Any) -> None:
        self._target, self._digest = target, digest

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._digest.update(data)
        return self._target.write(data)

    def tell(self) -> int:
        return self._target.tell()


@dataclass(frozen=True)
class IndexEntry:
    """One sample of a shard, from its .idx: key and {ext: (offset, size)}."""

    key: str
    members: dict[str, tuple[int, int]]

    @property
    def image_ext(self) -> str:
        return next(ext for ext in self.members if ext in EXTENSION_KINDS)


def read_index(idx_path: Path) -> list[IndexEntry]:
    """Parse a wds2idx v1.2 file."""
    lines = idx_path.read_text().splitlines()
    version, count = lines[0].split()
    if version != IDX_VERSION:
        raise ValueError(f"{idx_path.name}: unsupported index version {version}")
    entries = []
    for line in lines[1:1 + int(count)]:
        fields = line.split()
        members, key = {}, ""
        for i in range(0, len(fields), 4):
            ext, offset, size, name = fields[i:i + 4]
            members[ext] = (int(offset), int(size))
            key = name.split(".", 1)[0]  # keys hold no dots
        entries.append(IndexEntry(key, members))
    return entries


class ShardFile:
    """A memory-mapped shard: member bytes by (offset, size) from the index, no extraction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    def read(self, offset: int, size: int) -> bytes:
        return self._map[offset:offset + size]

    def close(self) -> None:
        self._map.close()
