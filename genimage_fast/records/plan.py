"""Planning a convert: which samples, in which chunks, with which match-real qualities."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genimage_fast.atomic import atomic_write_text
from genimage_fast.errors import GenImageError
from genimage_fast.records.formats import chunk_stem
from genimage_fast.records.quality import estimate_jpeg_quality
from genimage_fast.records.store import StoreSpec

SPLITS = ("train", "val", "test")  # test: other benchmarks' test sets (a GenImage tree has none)
SHARD_BYTES = 1 << 30  # aim: shards of about 1 GB at most
LARGEST_SIDE = 1024  # GenImage's largest images (Midjourney fakes)


@dataclass(frozen=True)
class Item:
    """One input to convert: its key (position in the split's sorted source list) and labels."""

    key: int
    path: str
    relpath: str
    label: int
    generator: int
    class_id: int
    drawn_quality: int | None = None  # match-real: the JPEG quality this fake will get


@dataclass(frozen=True)
class Chunk:
    split: str
    index: int
    items: tuple[Item, ...]
    fingerprint: str  # identifies the work: the settings and the chunk's inputs

    @property
    def stem(self) -> str:
        return chunk_stem(self.split, self.index)


def select_splits(split: str) -> tuple[str, ...]:
    if split == "all":
        return SPLITS
    if split not in SPLITS:
        raise GenImageError(f"unknown split {split!r}; choose from: train, val, test, all")
    return (split,)


def fingerprint(settings: dict[str, Any], items: Sequence[Item]) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for item in items:
        digest.update(f"{item.key}\0{item.relpath}\0{item.label}\0{item.generator}\0{item.class_id}"
                      f"\0{item.drawn_quality}\n".encode())
    return digest.hexdigest()


def real_quality(path: str) -> int:
    """The estimated quality of a real image (-1 for unreadable, corrupt or non-JPEG files: the
    convert itself rejects them, this pre-pass must not crash on them)."""
    try:
        with open(path, "rb") as fh:
            return estimate_jpeg_quality(fh.read())
    except Exception:  # noqa: BLE001 - whatever a damaged header makes the table parser raise
        return -1


def quality_distribution(qualities: Sequence[int]) -> dict[int, int]:
    """{quality: count} over the reals that are JPEGs."""
    return dict(sorted(Counter(q for q in qualities if q > 0).items()))


def draw_quality(relpath: str, distribution: dict[int, int]) -> int:
    """A quality drawn from the distribution, seeded by the relative path (same on every machine)."""
    total = sum(distribution.values())
    ticket = int.from_bytes(hashlib.sha256(relpath.encode()).digest()[:8], "big") % total
    for quality, count in distribution.items():
        if ticket < count:
            return quality
        ticket -= count
    raise AssertionError("unreachable: ticket < total")


def default_shard_size(spec: StoreSpec, max_side: int | None) -> int:
    """Samples per chunk so a shard of the largest images stays near 1 GB (fixed before reading any
    image, since chunk boundaries must be the same on every run and every machine): raw pixels take
    side² x 3 bytes, an encoded PNG at most about half that."""
    side = min(max_side or LARGEST_SIDE, LARGEST_SIDE)
    per_sample = side * side * 3 // (1 if spec.name == "raw" else 2)
    return max(64, min(10_000, SHARD_BYTES // per_sample))


def make_chunks(split: str, items: Sequence[Item], shard_size: int, settings: dict[str, Any]) -> list[Chunk]:
    """Contiguous slices of the split's sorted list; names follow from (split, index)."""
    chunks = []
    for index, start in enumerate(range(0, len(items), shard_size)):
        part = tuple(items[start:start + shard_size])
        chunks.append(Chunk(split, index, part, fingerprint(settings, part)))
    return chunks


def load_cached(path: Path, key: str) -> Any:
    """A cached JSON value when its key matches, else None."""
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return cached.get("value") if cached.get("key") == key else None


def store_cached(path: Path, key: str, value: Any) -> None:
    atomic_write_text(path, json.dumps({"key": key, "value": value}))
