"""Converting one chunk (runs in worker processes): read, validate, encode, write, mark done.

No input crashes a convert: whatever a decoder raises (the known UnreadableImage verdicts, and
anything else: IndexError, struct.error, zlib.error, MemoryError, ...) becomes a reject line with
the exception's type and message; `--strict` makes the first one an error instead.

Decompression bombs: PIL's limit is set deliberately, to CONVERT_MAX_IMAGE_PIXELS = 8192² (67.1
Mpx, 192 MiB of RGB per decode), for the duration of each decode. GenImage's largest images are the
1024² Midjourney fakes and ImageNet reals a few thousand pixels a side (≈ 5-20 Mpx), so no real
input comes near it, while a file that claims more (a damaged or hostile header) is rejected before
any pixel buffer is allocated; PIL's DecompressionBombWarning (1-2x the limit) is treated like its
DecompressionBombError (above 2x): a reject. The header is checked before the libjpeg-turbo fast
path too, which has no limit of its own.

Done-markers record each chunk file's size and sha256; a resume re-checks both, so a chunk whose
file was truncated (a power loss before the data reached the disk) or changed is converted again.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from genimage_fast.atomic import atomic_write_text
from genimage_fast.records.formats import RECORD_FORMATS, STATE_DIR
from genimage_fast.records.hashing import sha256_file
from genimage_fast.records.imageio import FORMAT_JPEG, UnreadableImage, load_source
from genimage_fast.records.plan import Chunk, Item
from genimage_fast.records.quality import estimate_jpeg_quality
from genimage_fast.records.store import StoreSpec, get_store
from genimage_fast.records.tarshard import Record

CONVERT_MAX_IMAGE_PIXELS = 8192 * 8192  # see the module docstring


class StrictFailure(Exception):
    """--strict met an unreadable input (carries 'relpath: reason')."""


@contextlib.contextmanager
def bomb_guard() -> Iterator[None]:
    """PIL's pixel limit at CONVERT_MAX_IMAGE_PIXELS and its bomb warning raised as an error, for
    one decode (restored after, so the rest of the process keeps its own settings)."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = CONVERT_MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def check_pixel_count(data: bytes) -> None:
    """Reject a header claiming more pixels than the limit, before anything is decoded. Headers
    PIL cannot parse pass here: load_source gives their verdict."""
    try:
        with Image.open(io.BytesIO(data)):
            pass
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"decompression bomb: {exc}") from None
    except Exception:  # noqa: BLE001 - any other header problem is load_source's to name
        pass


def reject_reason(exc: BaseException) -> str:
    """The one-line reason written to rejects.jsonl: our verdict, or the exception's type and message."""
    if isinstance(exc, UnreadableImage):
        return str(exc) or "unreadable"
    message = str(exc).splitlines()[0] if str(exc).strip() else ""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return f"decoder error: {name}" + (f": {message}" if message else "")


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
    if marker.get("fingerprint") != chunk.fingerprint or "files" not in marker:
        return None
    fmt = RECORD_FORMATS.get(marker["format"])
    if not fmt.chunk_present(out, marker["entry"]):
        return None
    return marker if all(_file_intact(out / f["name"], f["size"], f["sha256"]) for f in marker["files"]) else None


def _file_intact(path: Path, size: int, sha256: str) -> bool:
    """The file is there with the size and hash it was written with (size first: cheap)."""
    try:
        if path.stat().st_size != size:
            return False
    except OSError:
        return False
    return sha256_file(path) == sha256


def _describe_files(out: Path, paths: Sequence[Path]) -> list[dict[str, Any]]:
    return [{"name": p.relative_to(out).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in paths]


def convert_item(item: Item, split: str, job: ChunkJob, staged: StoreSpec) -> Record:
    """One input -> one record; UnreadableImage when it cannot be read or decoded."""
    try:
        data = Path(item.path).read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"unreadable: {exc.strerror or exc}") from None
    with bomb_guard():
        check_pixel_count(data)
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
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a reject (see module doc)
            if job.strict:
                raise StrictFailure(f"{item.relpath}: {reject_reason(exc)}") from None
            results.append({"path": item.relpath, "reason": reject_reason(exc)})
        if on_sample:
            on_sample()
    return results


def finish_chunk(job: ChunkJob, results: Sequence[Converted]) -> dict[str, Any]:
    """Write a chunk's file(s) atomically, then its done-marker; return the marker."""
    out = Path(job.out)
    records = [r for r in results if isinstance(r, Record)]
    rejects = [r for r in results if not isinstance(r, Record)]
    if len(records) + len(rejects) != len(job.chunk.items):  # every input is a record or a reject
        raise RuntimeError(f"chunk {job.chunk.stem}: {len(records)} records + {len(rejects)} rejects != "
                           f"{len(job.chunk.items)} inputs")
    fmt = RECORD_FORMATS.get(job.fmt)
    entry = fmt.write_chunk(out, job.chunk.split, job.chunk.index, records)
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        row = counts.setdefault(str(record.meta["generator"]), {"real": 0, "fake": 0})
        row["fake" if record.meta["label"] else "real"] += 1
    marker = {"format": job.fmt, "fingerprint": job.chunk.fingerprint, "split": job.chunk.split,
              "chunk": job.chunk.index, "entry": entry, "rejects": rejects, "counts": counts,
              "inputs": len(job.chunk.items), "files": _describe_files(out, fmt.chunk_files(out, entry))}
    atomic_write_text(marker_path(out, job.chunk), json.dumps(marker))
    return marker


def run_chunk(job: ChunkJob, on_sample: Callable[[], None] | None = None) -> dict[str, Any]:
    """Convert and write a whole chunk in this process."""
    return finish_chunk(job, convert_items(job, job.chunk.items, on_sample))
