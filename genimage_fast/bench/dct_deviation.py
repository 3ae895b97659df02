"""How far the opt-in reduced-scale JPEG decode (`fast_jpeg_decode`) is from the default full-size one.

The DCT-scaled decode touches only JPEGs, i.e. GenImage's reals, so any deviation is correlated with
the label. For each real photo (the demo tree's real JPEGs, plus PIL-made photo-like JPEGs of
GenImage-like sizes) and each output size, both decoders produce the same eval crop (resize short side
+ centre crop, the loaders' box path); we report

- the mean absolute difference in levels (0-255) and the largest pixel difference;
- the spectral deviation: per image, the radially averaged log-amplitude spectrum
  log(|fft2(grey / 255)| + 1e-3) of each crop, and the mean absolute difference between the two
  profiles over all radii and over the upper half of the radii (the high frequencies detectors key on).

Run: `python -m genimage_fast.bench.dct_deviation [--sizes 64,128,224] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genimage_fast.atomic import atomic_write_text
from genimage_fast.loaders.decode import dct_scale, decode_crop
from genimage_fast.loaders.transforms import TransformSpec, make_crop_plan


def photo_like_jpegs(count: int = 6, seed: int = 0) -> list[bytes]:
    """JPEGs of GenImage-like real sizes: smooth fields, edges, texture and sensor-like noise, q 75-96."""
    rng = np.random.default_rng(seed)
    sizes = [(500, 375), (640, 480), (375, 500), (800, 600), (1024, 683), (333, 500)]
    out = []
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        low = rng.integers(0, 256, size=(h // 32 + 2, w // 32 + 2, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC)).astype(np.float64)
        yy, xx = np.mgrid[0:h, 0:w]
        base += 30 * np.sin(xx / rng.uniform(2, 6))[..., None] * (yy > h // 2)[..., None]  # fine texture
        base[h // 4: h // 4 + h // 8] = rng.integers(0, 256, size=3)  # a flat band with hard edges
        base += rng.normal(0, 3, base.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buf, format="JPEG",
                                                                      quality=int(rng.integers(75, 97)))
        out.append(buf.getvalue())
    return out


def demo_real_jpegs(limit: int = 24) -> list[bytes]:
    from genimage_fast.sources.demo import make_demo_data

    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_data(Path(tmp) / "genimage", classes=2, per_class=3, seed=0)
        files = sorted(p for p in Path(root).rglob("*") if p.suffix.upper() in (".JPEG", ".JPG"))
        return [p.read_bytes() for p in files[:limit]]


def radial_log_spectrum(rgb: np.ndarray) -> np.ndarray:
    """Azimuthal mean of log(|fft2(grey / 255)| + 1e-3), DC at radius 0, radii up to the Nyquist circle."""
    grey = rgb.astype(np.float64).mean(axis=2) / 255.0
    spec = np.fft.fftshift(np.log(np.abs(np.fft.fft2(grey)) + 1e-3))
    h, w = spec.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h // 2, xx - w // 2).astype(int)
    keep = r < min(h, w) // 2
    return np.bincount(r[keep], spec[keep]) / np.bincount(r[keep])


def deviation(data: bytes, size: int) -> dict[str, float] | None:
    """Full vs DCT-scaled decode of one JPEG's eval crop at `size`; None when no reduced scale applies."""
    with Image.open(io.BytesIO(data)) as image:
        w, h = image.size
    box = make_crop_plan(TransformSpec("eval", size), np.array([w]), np.array([h]), 0, 0).boxes[0]
    d = dct_scale(w, h, box, size)
    if d == 1:
        return None
    full = decode_crop("jpeg", data, box, size, False).astype(np.int64)
    fast = decode_crop("jpeg", data, box, size, False, fast_jpeg=True).astype(np.int64)
    diff = np.abs(full - fast)
    spec = np.abs(radial_log_spectrum(full) - radial_log_spectrum(fast))
    # a yardstick: the same crop after one more JPEG round trip at q95 of the full image
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="JPEG", quality=95)
    q95 = decode_crop("jpeg", buf.getvalue(), box, size, False).astype(np.int64)
    yard = np.abs(radial_log_spectrum(full) - radial_log_spectrum(q95))
    return {"scale": float(d), "mean_abs": float(diff.mean()), "max_abs": float(diff.max()),
            "spectrum_all": float(spec.mean()), "spectrum_high": float(spec[len(spec) // 2:].mean()),
            "q95_mean_abs": float(np.abs(full - q95).mean()), "q95_spectrum_high": float(yard[len(yard) // 2:].mean())}


def decode_speed(jpegs: list[bytes], size: int, repeats: int = 3) -> dict[str, float]:
    """Images/s of the eval box path with each decoder, one core, the same JPEGs."""
    boxes = []
    for data in jpegs:
        with Image.open(io.BytesIO(data)) as image:
            w, h = image.size
        boxes.append(make_crop_plan(TransformSpec("eval", size), np.array([w]), np.array([h]), 0, 0).boxes[0])
    rates = {}
    for name, fast in (("full", False), ("dct-scaled", True)):
        start = time.perf_counter()
        for _ in range(repeats):
            for data, box in zip(jpegs, boxes, strict=True):
                decode_crop("jpeg", data, box, size, False, fast_jpeg=fast)
        rates[name] = repeats * len(jpegs) / (time.perf_counter() - start)
    return rates


def run(sizes: tuple[int, ...] = (64, 128, 224)) -> dict[str, Any]:
    sets = {"demo reals": demo_real_jpegs(), "photo-like": photo_like_jpegs()}
    rows = []
    for set_name, jpegs in sets.items():
        for size in sizes:
            found = [r for r in (deviation(data, size) for data in jpegs) if r is not None]
            row: dict[str, Any] = {"set": set_name, "size": size, "images": len(jpegs), "reduced": len(found)}
            for key in ("mean_abs", "max_abs", "spectrum_all", "spectrum_high", "q95_mean_abs", "q95_spectrum_high"):
                values = [r[key] for r in found]
                row[key] = float(np.max(values) if key == "max_abs" else np.mean(values)) if values else None
            row["images_per_second"] = decode_speed(jpegs, size)
            rows.append(row)
    return {"rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| JPEGs | size | reduced / all | mean abs (levels) | max abs | radial log-spectrum diff "
             "(all / high half) | yardstick: q95 re-encode (mean abs / high half) | img/s full | img/s dct-scaled |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        def f(v, fmt="{:.2f}"):
            return "–" if v is None else fmt.format(v)
        ips = r["images_per_second"]
        lines.append(f"| {r['set']} | {r['size']} | {r['reduced']}/{r['images']} | {f(r['mean_abs'])} | "
                     f"{f(r['max_abs'], '{:.0f}')} | {f(r['spectrum_all'], '{:.3f}')} / "
                     f"{f(r['spectrum_high'], '{:.3f}')} | {f(r['q95_mean_abs'])} / "
                     f"{f(r['q95_spectrum_high'], '{:.3f}')} | "
                     f"{ips['full']:.0f} | {ips['dct-scaled']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128,224", help="output crop sizes, comma separated")
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    result = run(tuple(int(s) for s in args.sizes.split(",")))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(markdown(result))  # noqa: T201  (a command's output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
