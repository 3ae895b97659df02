"""Lossless codec candidates on one core: decode images/s and size, beside PNG decode of the same files.

    python -m genimage_fast.bench.codecs DIR [--limit N] [--json FILE]

Every PNG under DIR (recursively) is decoded once to RGB (PIL); each candidate then encodes those
pixels and is timed decoding them back to HWC uint8 RGB on one thread (best of `--repeat` passes,
every payload checked bit-exact first), timed in CPU seconds of this process so that a busy
shared machine does not skew the comparison). Candidates: PNG itself (OpenCV and PIL, from the file's
bytes), raw pixels under LZ4 / zstd, and the gradient + subtract-green filter of records/lossless.py
before LZ4 / zstd at several levels; the `ours` row is records.lossless.decode_lossless end to end
(header checks, zstd checksum, numba unfilter). LZ4 rows need the optional `lz4` package.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from genimage_fast.bench.common import Measurement, report
from genimage_fast.records import lossless as L


def _candidates(images: list[np.ndarray], files: list[bytes]) -> dict[str, tuple[list, Callable]]:
    import cv2
    import zstandard

    cv2.setNumThreads(1)
    out: dict[str, tuple[list, Callable]] = {
        "png/opencv": (files, lambda p, s: cv2.cvtColor(cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR),
                                                        cv2.COLOR_BGR2RGB)),
        "png/pil": (files, lambda p, s: np.asarray(Image.open(io.BytesIO(p)).convert("RGB"))),
        "raw/memcpy": ([i.tobytes() for i in images], lambda p, s: np.frombuffer(p, np.uint8).reshape(s).copy()),
    }
    dctx = zstandard.ZstdDecompressor()
    filtered = [L.filter_reference(i).tobytes() for i in images]
    for level in (3,):
        cctx = zstandard.ZstdCompressor(level=level)
        out[f"raw/zstd-{level}"] = ([cctx.compress(i.tobytes()) for i in images],
                                    lambda p, s: np.frombuffer(dctx.decompress(p), np.uint8).reshape(s))
    for level in (1, 3, 6):
        cctx = zstandard.ZstdCompressor(level=level)
        out[f"gradient+sg/zstd-{level}"] = ([cctx.compress(f) for f in filtered],
                                            lambda p, s: L.unfilter(np.frombuffer(dctx.decompress(p), np.uint8)
                                                                    .reshape(s)))
    try:
        import lz4.block
    except ImportError:
        pass
    else:
        out["raw/lz4"] = ([lz4.block.compress(i.tobytes()) for i in images],
                          lambda p, s: np.frombuffer(lz4.block.decompress(p), np.uint8).reshape(s))
        out["gradient+sg/lz4"] = ([lz4.block.compress(f) for f in filtered],
                                  lambda p, s: L.unfilter(np.frombuffer(lz4.block.decompress(p), np.uint8).reshape(s)))
    out["ours (records.lossless)"] = ([L.encode_lossless(i) for i in images], lambda p, s: L.decode_lossless(p))
    return out


def bench_codecs(folder: str, limit: int = 0, repeat: int = 3, json_path: str | None = None) -> dict:
    paths = sorted(Path(folder).rglob("*.png"))[: limit or None]
    if not paths:
        raise SystemExit(f"no .png files under {folder}")
    files = [p.read_bytes() for p in paths]
    images = [np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in files]
    raw_bytes, png_bytes = sum(i.nbytes for i in images), sum(map(len, files))
    candidates = _candidates(images, files)
    for name, (payloads, decode) in candidates.items():
        for payload, image in zip(payloads, images, strict=True):
            if not np.array_equal(decode(payload, image.shape), image):
                raise AssertionError(f"{name} is not bit-exact")
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeat):  # interleaved, so load from other processes hits every candidate alike
        for name, (payloads, decode) in candidates.items():
            start = time.process_time()  # CPU time: other processes' load on the machine does not count
            for payload, image in zip(payloads, images, strict=True):
                decode(payload, image.shape)
            best[name] = min(best[name], time.process_time() - start)
    rows = []
    for name, (payloads, _) in candidates.items():
        size = sum(map(len, payloads))
        rows.append(Measurement(name, len(images), best[name], baseline=name == "png/opencv",
                                extra={"size_of_raw": size / raw_bytes, "size_of_png": size / png_bytes,
                                       "decode_mb_per_s": raw_bytes / best[name] / 1e6}))
    import os

    settings = {"folder": str(folder), "images": len(images), "raw_mb": raw_bytes / 1e6,
                "load_average": os.getloadavg()[0],
                "png_of_raw": png_bytes / raw_bytes, "threads": 1, "repeat": repeat, "timing": "process CPU seconds"}
    title = f"lossless codecs, one thread, per CPU-second ({len(images)} PNGs, PNG = {png_bytes / raw_bytes:.2f} raw)"
    payload = report(title, rows, json_path, settings)
    for m in rows:
        sys.stdout.write(f"{m.name:<26} size {m.extra['size_of_png']:.2f}x PNG ({m.extra['size_of_raw']:.2f} of raw), "
                         f"{m.extra['decode_mb_per_s']:.0f} MB/s of pixels\n")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    bench_codecs(args.folder, args.limit, args.repeat, args.json_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
