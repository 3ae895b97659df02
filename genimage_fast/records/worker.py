"""Converting one chunk (runs in worker processes): read, validate, encode, write, mark done."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genimage_fast.atomic import atomic_write_text
from genimage_fast.records.formats import RECORD_FORMATS, STATE_DIR
from genimage_fast.records.imageio import FORMAT_JPEG, UnreadableImage, load_source
from genimage_fast.records.plan import Chunk, Item
from genimage_fast.records.quality import estimate_jpeg_quality
from genimage_fast.records.store import StoreSpec, get_store
from genimage_fast.records.tarshard import Record


class StrictFailure(Exception):
    """--strict met an unreadable input (carries 'relpath: reason')."""


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs (picklable): the chunk and the settings."""

    out: str
    fmt: str
    store: StoreSpec
    max_side: int | None
    strict: bool
    chunk: Chunk


def marker_path(out: Path, chunk: Chunk) -> Path:
    return out / STATE_DIR / f"{chunk.stem}.done.json"


def read_marker(out: Path, chunk: Chunk) -> dict[str, Any] | None:
    """The done-marker of a chunk if it is for the same work and its files are still there."""
    try:
        marker = json.loads(marker_path(out, chunk).read_text())
    except (OSError, ValueError):
        return None
    if marker.get("fingerprint") != chunk.fingerprint:
        return None
    fmt = RECORD_FORMATS.get(marker["format"])
    return marker if fmt.chunk_present(out, marker["entry"]) else None


def convert_item(item: Item, split: str, job: ChunkJob, staged: StoreSpec) -> Record:
    """One input -> one record; UnreadableImage when it cannot be read or decoded."""
    try:
        data = Path(item.path).read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"unreadable: {exc.strerror or exc}") from None
    src = load_source(data)
    kind, payload = get_store(staged).encode(src, item.label, job.max_side, staged, item.drawn_quality)
    stored_quality = estimate_jpeg_quality(payload) if kind == "jpeg" else -1
    meta: dict[str, Any] = {
        "label": item.label, "generator": item.generator, "class_id": item.class_id,
        "source_format": src.source_format, "width": src.width, "height": src.height,
        "jpeg_quality": src.jpeg_quality if src.source_format == FORMAT_JPEG else -1,
        "stored_quality": stored_quality, "split": split, "path": item.relpath, "key": item.key,
    }
    if kind == "raw":
        meta["raw_shape"] = list(payload.shape)
    return Record(item.key, kind, payload, meta)


Converted = Record | dict[str, str]  # a record, or a reject {"path", "reason"}


def convert_items(job: ChunkJob, items: Sequence[Item],
                  on_sample: Callable[[], None] | None = None) -> list[Converted]:
    """Convert some of a chunk's items (in a worker); StrictFailure on a bad one under --strict."""
    staged = RECORD_FORMATS.get(job.fmt).staged_store(job.store)
    results: list[Converted] = []
    for item in items:
        try:
            results.append(convert_item(item, job.chunk.split, job, staged))
        except UnreadableImage as exc:
            if job.strict:
                raise StrictFailure(f"{item.relpath}: {exc}") from None
            results.append({"path": item.relpath, "reason": str(exc)})
        if on_sample:
            on_sample()
    return results


def finish_chunk(job: ChunkJob, results: Sequence[Converted]) -> dict[str, Any]:
    """Write a chunk's file(s) atomically, then its done-marker; return the marker."""
    out = Path(job.out)
    records = [r for r in results if isinstance(r, Record)]
    rejects = [r for r in results if not isinstance(r, Record)]
    entry = RECORD_FORMATS.get(job.fmt).write_chunk(out, job.chunk.split, job.chunk.index, records)
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        row = counts.setdefault(str(record.meta["generator"]), {"real": 0, "fake": 0})
        row["fake" if record.meta["label"] else "real"] += 1
    marker = {"format": job.fmt, "fingerprint": job.chunk.fingerprint, "split": job.chunk.split,
              "chunk": job.chunk.index, "entry": entry, "rejects": rejects, "counts": counts,
              "inputs": len(job.chunk.items)}
    atomic_write_text(marker_path(out, job.chunk), json.dumps(marker))
    return marker


def run_chunk(job: ChunkJob, on_sample: Callable[[], None] | None = None) -> dict[str, Any]:
    """Convert and write a whole chunk in this process."""
    return finish_chunk(job, convert_items(job, job.chunk.items, on_sample))
