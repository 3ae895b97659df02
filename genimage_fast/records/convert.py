"""`genimage-fast convert`: a GenImage tree -> FFCV .beton / DALI webdataset record files.

Work is split into chunks (contiguous slices of each split's sorted sample list; their size keeps
shards near 1 GB, see plan.default_shard_size). A worker converts a chunk, writes its file(s) via
temp + rename, then a done-marker in OUT/.state; a rerun with the same arguments skips chunks
whose marker matches, so an interrupted convert resumes and ends with identical files.
`--shard I/N` converts every N-th chunk starting at I, counting the chunks of all splits in order
(train's, then val's).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

from genimage_fast.atomic import atomic_write_text
from genimage_fast.errors import GenImageError
from genimage_fast.generators import parse_generators
from genimage_fast.records import grommelt
from genimage_fast.records.formats import RECORD_FORMATS, STAGING_DIR, STATE_DIR, chunk_stem
from genimage_fast.records.hashing import sha256_file
from genimage_fast.records.manifest import (
    MANIFEST,
    build_manifest,
    read_manifest,
    shard_manifest_name,
    write_rejects,
)
from genimage_fast.records.plan import (
    Chunk,
    Item,
    default_shard_size,
    draw_quality,
    load_cached,
    make_chunks,
    quality_distribution,
    real_quality,
    select_splits,
    store_cached,
)
from genimage_fast.records.store import StoreSpec, get_store, parse_store
from genimage_fast.records.worker import ChunkJob, StrictFailure, convert_items, finish_chunk, read_marker, run_chunk

ITEM_BATCH = 16  # items per pool task: big enough to amortise pickling, small enough to balance
IN_FLIGHT = 3  # chunks queued in the pool at once


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    index, count = (int(v) for v in shard)
    if count < 1 or not 0 <= index < count:
        raise GenImageError(f"--shard {index}/{count}: need 0 <= I < N")
    return index, count


def _real_distributions(out: Path, items_by_split: dict[str, list[Item]], workers: int,
                        ) -> dict[str, dict[int, int]]:
    """match-real: per split, the reals' estimated JPEG qualities (cached in OUT/.state)."""
    result = {}
    for split, items in items_by_split.items():
        reals = [item.path for item in items if item.label == 0]
        key = hashlib.sha256(json.dumps(reals).encode()).hexdigest()  # absolute paths: this tree
        cache = out / STATE_DIR / f"qualities-{split}.json"
        cached = load_cached(cache, key)
        if cached is None:
            if workers > 1 and len(reals) > 256:
                with ProcessPoolExecutor(workers) as pool:
                    qualities = list(pool.map(real_quality, reals, chunksize=256))
            else:
                qualities = [real_quality(p) for p in reals]
            cached = {str(q): n for q, n in quality_distribution(qualities).items()}
            store_cached(cache, key, cached)
        if items and not cached:
            raise GenImageError(f"--store match-real: split {split!r} has no real JPEG images to take "
                                "qualities from")
        result[split] = {int(q): n for q, n in cached.items()}
    return result


def plan_chunks(src: Path, out: Path, splits: Sequence[str], generator_ids: list[int] | None,
                spec: StoreSpec, settings: dict[str, Any], shard_size: int, workers: int,
                protocol: str | None = None,
                ) -> tuple[list[Chunk], list[dict[str, str]], dict[str, dict[int, int]], dict[str, Any]]:
    """Scan, filter, and cut into chunks; also scan's skips, match-real's distributions and manifest
    extras: the protocol's selection record (None without --protocol) and other benchmarks'
    generator names (`generator_names`, {} for a GenImage tree)."""
    from genimage_fast.sources import scan_tree

    scan = scan_tree(src)
    items_by_split: dict[str, list[Item]] = {split: [] for split in splits}
    for sample in scan.samples:  # sorted by relpath
        if sample.split not in items_by_split:
            continue
        if generator_ids is not None and sample.generator not in generator_ids:
            continue
        bucket = items_by_split[sample.split]
        bucket.append(Item(len(bucket), str(sample.path), sample.relpath, sample.label, sample.generator,
                           sample.class_id))
    if not items_by_split.get("test"):  # only other benchmarks' trees have a test split
        items_by_split.pop("test", None)
    protocol_record = None
    if protocol is not None:  # Grommelt et al.: reals filtered by quality and size, fakes subsampled
        items_by_split, protocol_record = grommelt.select(items_by_split, class_balanced=protocol.endswith("balanced"),
                                                          workers=workers)
    distributions: dict[str, dict[int, int]] = {}
    if get_store(spec).needs_real_qualities:
        distributions = _real_distributions(out, items_by_split, workers)
        items_by_split = {
            split: [replace(item, drawn_quality=draw_quality(item.relpath, distributions[split]))
                    if item.label == 1 else item for item in items]
            for split, items in items_by_split.items()
        }
    chunks = [chunk for split in splits if split in items_by_split
              for chunk in make_chunks(split, items_by_split[split], shard_size, settings)]
    # Files the scan did not take (hidden, system, non-image names) are not inputs, so not rejects.
    skipped = [{"path": s.path, "reason": s.reason} for s in scan.skipped]
    names = {str(k): v for k, v in sorted(scan.generator_names.items())}
    extra = {"protocol": protocol_record, **({"generator_names": names} if names else {})}
    return chunks, skipped, distributions, extra


class _Progress:
    """A tqdm bar with images/s and ETA on stderr (or nothing when disabled)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        if enabled and total:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="img", desc="convert", file=sys.stderr, smoothing=0.1)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _run_jobs(jobs: list[ChunkJob], workers: int, progress: _Progress) -> list[dict[str, Any]]:
    """Convert chunks; StrictFailure -> GenImageError.

    With workers > 1 the pool converts batches of items (so small or uneven chunks still use every
    worker) while this process writes each chunk, in order, as soon as its batches are back; at most
    IN_FLIGHT chunks are queued so memory stays bounded.
    """
    markers: list[dict[str, Any]] = []
    try:
        if workers <= 1:
            for job in jobs:
                markers.append(run_chunk(job, on_sample=progress.update))
            return markers
        with ProcessPoolExecutor(max_workers=workers) as pool:
            queue: deque[tuple[ChunkJob, list[Future]]] = deque()
            pending = iter(jobs)
            while True:
                while len(queue) < IN_FLIGHT and (job := next(pending, None)) is not None:
                    items = job.chunk.items
                    light = replace(job, chunk=replace(job.chunk, items=()))  # items travel per batch
                    batches = [items[i:i + ITEM_BATCH] for i in range(0, len(items), ITEM_BATCH)]
                    queue.append((job, [pool.submit(convert_items, light, batch) for batch in batches]))
                if not queue:
                    return markers
                job, futures = queue.popleft()
                results = []
                for future in futures:
                    try:
                        part = future.result()
                    except StrictFailure:
                        for _, later in queue:
                            for other in later:
                                other.cancel()
                        raise
                    results.extend(part)
                    progress.update(len(part))
                markers.append(finish_chunk(job, results))
    except StrictFailure as exc:
        raise GenImageError(f"--strict: unreadable input {exc}") from None
    except BrokenProcessPool:  # a worker killed (OOM killer) or crashed in native code: one line, resumable
        raise GenImageError(f"a convert worker process died (killed for memory, or a crash inside a decoder) after "
                            f"{len(markers)} of {len(jobs)} chunk(s); rerun the same command to resume (finished "
                            "chunks are kept), with --workers 1 to see which input it was") from None


def _finalize(out: Path, fmt_name: str, spec: StoreSpec, chunks: list[Chunk], markers: dict[str, dict[str, Any]],
              settings: dict[str, Any], extra: dict[str, Any], workers: int) -> dict[str, Any]:
    """All chunks are done: build the splits' final files, rejects.jsonl and manifest.json."""
    fmt = RECORD_FORMATS.get(fmt_name)
    ordered = [markers[c.stem] for c in chunks]
    splits: dict[str, dict[str, Any]] = {}
    for split in dict.fromkeys(c.split for c in chunks):
        entries = [m["entry"] for m in ordered if m["split"] == split]
        splits[split] = fmt.finalize_split(out, split, entries, spec, workers)
    rejects = [r for m in ordered for r in m["rejects"]]
    write_rejects(out, rejects)
    inputs = sum(m["inputs"] for m in ordered)
    records = sum(info["count"] for info in splits.values())
    if records + len(rejects) != inputs:  # every input is a record or a reject line, never lost
        raise GenImageError(f"convert lost inputs: {records} records + {len(rejects)} rejects != {inputs} inputs")
    manifest = build_manifest(settings, splits, ordered, len(rejects), {**extra, "inputs": inputs})
    atomic_write_text(out / MANIFEST, _dump(manifest))
    for split in splits:
        fmt.cleanup(out, split, [m["entry"] for m in ordered if m["split"] == split])
    return manifest


def _remove_stale_temporaries(out: Path) -> None:
    """Temp files an interrupted run left (never under --shard: another slice may be writing)."""
    for folder in (out, out / STATE_DIR, out / STAGING_DIR):
        if folder.is_dir():
            for tmp in folder.glob("*.tmp"):
                tmp.unlink(missing_ok=True)


def _dump(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"


def _finished(out: Path, run_key: str) -> dict[str, Any] | None:
    """The manifest of an identical, finished convert whose files are all present."""
    try:
        manifest = read_manifest(out)
    except GenImageError:
        return None
    if manifest.get("run_key") != run_key:
        return None
    # Size alone cannot tell a damaged file (the manifest keeps hashes): re-hash what is kept.
    entries = [e for s in manifest["splits"].values() for e in s["files"] + s.get("sidecars", [])]
    intact = all((out / e["name"]).is_file() and sha256_file(out / e["name"]) == e["sha256"] for e in entries)
    return manifest if intact else None


def convert(src: str | Path, out: str | Path, fmt: str = "dali", split: str = "all",
            generators: Sequence[str | int] | str | None = None, store: str = "original",
            max_side: int | None = None, workers: int = 1, shard: tuple[int, int] = (0, 1),
            strict: bool = False, progress: bool = True, shard_size: int | None = None,
            protocol: str | None = None) -> dict[str, Any]:
    """Convert a GenImage tree into record files; return the manifest (the shard's own when partial)."""
    src_path, out_path = Path(src).resolve(), Path(out)
    RECORD_FORMATS.get(fmt).check_available()
    grommelt.check_protocol(protocol, store)
    spec = parse_store(store) if protocol is None else StoreSpec("fakes-jpeg", grommelt.JPEG_QUALITY)
    shard_index, shard_count = _check_shard(shard)
    if not src_path.exists():
        raise GenImageError(f"source {str(src)!r} does not exist")
    if max_side is not None and max_side < 1:
        raise GenImageError("--max-side must be >= 1")
    shard_size = default_shard_size(spec, max_side) if shard_size is None else int(shard_size)
    if shard_size < 1:
        raise GenImageError("shard_size must be >= 1")
    splits = select_splits(split)
    generator_ids = parse_generators(generators)
    workers = max(1, int(workers))
    # What the chunks' fingerprints cover; not the source's absolute path, so slices converted on
    # machines that mount the tree elsewhere still merge (the relative paths identify the inputs).
    settings = {"format": fmt, "store": str(spec), "max_side": max_side, "shard_size": shard_size, "version": 1}
    if protocol is not None:  # only then, so fingerprints of earlier record sets stay valid
        settings["protocol"] = protocol
    (out_path / STATE_DIR).mkdir(parents=True, exist_ok=True)
    if shard_count == 1:
        _remove_stale_temporaries(out_path)

    chunks, skipped, distributions, plan_extra = plan_chunks(src_path, out_path, splits, generator_ids, spec,
                                                                  settings, shard_size, workers, protocol)
    run_key = hashlib.sha256(json.dumps([c.fingerprint for c in chunks] + [skipped]).encode()).hexdigest()
    if (finished := _finished(out_path, run_key)) is not None:
        return finished
    extra = {"source": str(src_path), "generators": generator_ids, "shard_size": shard_size,
             "scan_skipped": len(skipped), "run_key": run_key, **plan_extra}
    if distributions:
        extra["quality_distribution"] = {s: {str(q): n for q, n in d.items()} for s, d in distributions.items()}

    markers = {c.stem: m for c in chunks if (m := read_marker(out_path, c)) is not None}
    # Chunks are dealt round-robin over all splits, so every slice gets a share even of small sets.
    mine = [c for position, c in enumerate(chunks) if position % shard_count == shard_index]
    todo = [c for c in mine if c.stem not in markers]
    bar = _Progress(sum(len(c.items) for c in todo), progress)
    try:
        jobs = [ChunkJob(str(out_path), fmt, spec, max_side, strict, c) for c in todo]
        for marker in _run_jobs(jobs, workers, bar):
            markers[chunk_stem(marker["split"], marker["chunk"])] = marker
    finally:
        bar.close()

    if all(c.stem in markers for c in chunks):
        return _finalize(out_path, fmt, spec, chunks, markers, settings, extra, workers)
    # Only part of the chunks exist (other --shard slices still to come): a manifest for this slice.
    own = [markers[c.stem] for c in mine]
    partial_splits = {
        s: {"count": sum(m["entry"]["count"] for m in own if m["split"] == s),
            "files": [{k: m["entry"][k] for k in ("name", "sha256", "count")} for m in own
                      if m["split"] == s and m["entry"]["count"]]}
        for s in splits
    }
    rejects = [r for m in own for r in m["rejects"]]
    manifest = build_manifest(settings, partial_splits, own, len(rejects),
                              {**extra, "shard": [shard_index, shard_count], "complete": False,
                               "missing_chunks": [c.stem for c in chunks if c.stem not in markers]})
    atomic_write_text(out_path / shard_manifest_name(shard_index, shard_count), _dump(manifest))
    return manifest


def convert_command(src: str, out: str, fmt: str, split: str = "all", generators: str | None = None,
                    store: str = "original", max_side: int | None = None, workers: int = 1,
                    shard: tuple[int, int] = (0, 1), strict: bool = False, progress: bool = True,
                    protocol: str | None = None) -> int:
    """CLI entry: convert, then one summary line per split on stdout."""
    manifest = convert(src, out, fmt=fmt, split=split, generators=generators, store=store, max_side=max_side,
                       workers=workers, shard=shard, strict=strict, progress=progress, protocol=protocol)
    for name, info in manifest["splits"].items():
        sys.stdout.write(f"{name}: {info['count']} samples in {len(info['files'])} file(s)\n")
    sys.stdout.write(f"rejects: {manifest['rejects']}\n")
    if "inputs" in manifest:
        records = sum(info["count"] for info in manifest["splits"].values())
        sys.stdout.write(f"inputs: {manifest['inputs']} = {records} records + {manifest['rejects']} rejects\n")
    if manifest.get("complete") is False:
        sys.stdout.write(f"slice {shard[0]}/{shard[1]} done; {len(manifest['missing_chunks'])} chunk(s) from "
                         f"other slices missing: {shard_manifest_name(*shard)} written\n")
    else:
        sys.stdout.write(f"wrote {os.path.join(out, MANIFEST)}\n")
    return 0
