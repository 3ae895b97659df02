"""`genimage-fast bench convert SRC`: convert's images/s beside a plain single-process PIL loop.

The baseline does the same work per image the way a one-off script would: read the file, decode it
fully with PIL (the validation convert does), convert to RGB, apply the store mode (and --max-side)
with PIL, and append payload + JSON metadata to one tar with `tarfile`. Both run in the same process
on the same inputs (`--limit N` takes N of them, spread over generators and splits).
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from genimage_fast.bench.common import Measurement, report
from genimage_fast.errors import GenImageError
from genimage_fast.records.convert import convert
from genimage_fast.records.plan import draw_quality, quality_distribution, real_quality
from genimage_fast.records.store import parse_store


def _subset_tree(src: Path, dst: Path, limit: int) -> int:
    """Symlink an evenly spread subset of SRC's samples into dst (same relative paths)."""
    from genimage_fast.sources import scan_tree

    samples = scan_tree(src).samples
    if limit > 0 and limit < len(samples):
        step = len(samples) / limit
        samples = [samples[int(i * step)] for i in range(limit)]
    for sample in samples:
        link = dst / sample.relpath
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(sample.path, link)
    return len(samples)


def plain_pil_convert(src: Path, out_tar: Path, store: str, max_side: int | None) -> int:
    """The baseline: one process, PIL for everything, one tar."""
    from PIL import Image

    from genimage_fast.sources import scan_tree

    spec = parse_store(store)
    samples = scan_tree(src).samples
    dist = {}
    if spec.name == "match-real":
        for split in ("train", "val"):
            reals = [real_quality(str(s.path)) for s in samples if s.split == split and s.label == 0]
            dist[split] = quality_distribution(reals)
    written = 0
    with tarfile.open(out_tar, "w") as tar:
        for i, s in enumerate(samples):
            data = s.path.read_bytes()
            try:
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
                    image = im.convert("RGB")
            except (OSError, SyntaxError, ValueError):
                continue
            if max_side and max(image.size) > max_side:
                scale = max_side / max(image.size)
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.Resampling.BILINEAR)
                resized = True
            else:
                resized = False
            keep = spec.name == "original" or (spec.name == "match-real" and s.label == 0)
            if keep and not resized:
                payload, ext = data, ("jpg" if data[:2] == b"\xff\xd8" else "png")
            elif spec.name == "raw":
                payload, ext = image.tobytes(), "raw"
            elif spec.name == "lossless":  # same codec: the baseline is the one-process PIL pipeline
                from genimage_fast.records.lossless import encode_lossless

                payload, ext = encode_lossless(np.asarray(image)), "lossless"
            else:
                quality = spec.quality or (draw_quality(s.relpath, dist[s.split]) if s.label else 95)
                buf = io.BytesIO()
                image.save(buf, format="JPEG", quality=quality)
                payload, ext = buf.getvalue(), "jpg"
            meta = json.dumps({"path": s.relpath, "label": s.label, "generator": s.generator,
                               "width": image.width, "height": image.height}).encode()
            for name, blob in ((f"{i:09d}.{ext}", payload), (f"{i:09d}.json", meta)):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
            written += 1
    return written


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the worker pools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds): CPU time stays meaningful on a busy shared machine."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start, _cpu_seconds() - cpu


def bench_convert_command(src: str, fmt: str = "dali", store: str = "original", max_side: int | None = None,
                          workers: int = 2, limit: int = 0, json_path: str | None = None) -> int:
    """`store` may list several stores (`original,lossless`): each is measured in the same run on the
    same inputs, and each is also compared with the first (convert img/s of lossless beside original)."""
    src_path = Path(src)
    if not src_path.is_dir():
        raise GenImageError(f"source {src!r} is not a folder")
    stores = [s.strip() for s in store.split(",") if s.strip()]
    for name in stores:
        parse_store(name)
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp_name:
        tmp = Path(tmp_name)
        tree = tmp / "tree"
        n = _subset_tree(src_path.resolve(), tree, limit)
        for k, st in enumerate(stores):
            tag = f" {st}" if len(stores) > 1 else ""
            # Warm the page cache and the imports (FFCV's import alone is seconds) outside the timings.
            plain_pil_convert(tree, tmp / f"warm{k}.tar", st, max_side)
            convert(tree, tmp / f"warm{k}", fmt=fmt, store=st, max_side=max_side, workers=1, progress=False)
            written, secs, cpu = _timed(lambda st=st, k=k: plain_pil_convert(tree, tmp / f"plain{k}.tar", st, max_side))
            rows.append(Measurement(f"convert/plain-pil-loop{tag}", written, secs, baseline=True,
                                    extra={"store": st, "cpu_ms_per_image": 1000 * cpu / max(written, 1)}))
            for w in sorted({1, workers}):
                manifest, secs, cpu = _timed(lambda w=w, st=st, k=k: convert(
                    tree, tmp / f"ours-{k}-{w}", fmt=fmt, store=st, max_side=max_side, workers=w, progress=False))
                count = sum(s["count"] for s in manifest["splits"].values())
                size = sum((tmp / f"ours-{k}-{w}" / e["name"]).stat().st_size
                           for s in manifest["splits"].values() for e in s["files"])
                rows.append(Measurement(f"convert/{fmt}{tag} workers={w}", count, secs,
                                        extra={"store": st, "workers": w, "rejects": manifest["rejects"],
                                               "bytes": size, "cpu_ms_per_image": 1000 * cpu / max(count, 1)}))
    settings = {"src": str(src_path), "format": fmt, "stores": stores, "max_side": max_side, "workers": workers,
                "inputs": n, "load_average": os.getloadavg()[0]}
    report(f"bench convert ({fmt}, store {', '.join(stores)}, {n} inputs)", rows, json_path, settings,
           group=lambda m: m.extra["store"])
    cpu_line = ", ".join(f"{m.name} {m.extra['cpu_ms_per_image']:.2f}" for m in rows)
    sys.stdout.write(f"CPU ms per image: {cpu_line}; load average {os.getloadavg()[0]:.1f} "
                     f"on {os.cpu_count()} CPUs\n")
    first = {m.extra.get("workers"): m for m in rows if m.extra["store"] == stores[0] and not m.baseline}
    for m in rows:
        ref = first.get(m.extra.get("workers"))
        if m.extra["store"] != stores[0] and not m.baseline and ref is not None:
            sys.stdout.write(f"{m.name}: {m.images_per_second / ref.images_per_second:.2f}x {ref.name}'s img/s, "
                             f"{m.extra['bytes'] / max(ref.extra['bytes'], 1):.2f}x its bytes\n")
    return 0
