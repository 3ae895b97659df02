"""A fake-heavy GenImage-layout tree whose fakes compress like GenImage's, for `bench loader`.

demo-data's fakes are synthetic textures that PNG compresses to ~0.20 of raw, against ~0.51 for
GenImage's real fakes, which makes PNG decode look unusually cheap. This copies a demo tree and
replaces every fake PNG by a photo-like image of the same size (crops of matplotlib's Grace Hopper
sample photo, bicubic-resized, with mild seeded noise; PIL's default PNG compression), so loader
ratios over `original` records are measured on PNGs as costly to decode as the release's.

    python -m genimage_fast.bench.photo_tree DEMO_TREE OUT
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def photo_source() -> Image.Image:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as im:
        return im.convert("RGB")


def photo_like(source: Image.Image, width: int, height: int, seed: int) -> Image.Image:
    """A seeded crop of the photo, resized to (width, height), with σ=2 noise (as sensor grain)."""
    rng = np.random.default_rng(seed)
    w, h = source.size
    side = int(rng.integers(min(w, h) // 3, min(w, h)))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    crop = source.crop((x, y, x + side, y + side)).resize((width, height), Image.BICUBIC)
    noisy = np.asarray(crop, dtype=np.float32) + rng.normal(0.0, 2.0, (height, width, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def make_photo_tree(demo: str | Path, out: str | Path) -> dict[str, float]:
    """Copy `demo`, rewriting each fake PNG; returns the fakes' PNG size as a fraction of raw pixels."""
    demo, out = Path(demo), Path(out)
    shutil.copytree(demo, out)
    source = photo_source()
    raw = png = 0
    for path in sorted(p for p in out.rglob("*") if p.suffix.lower() == ".png" and "/ai/" in p.as_posix()):
        with Image.open(path) as im:
            width, height = im.size
        seed = zlib.crc32(path.relative_to(out).as_posix().encode())
        photo_like(source, width, height, seed).save(path, format="PNG")
        raw += width * height * 3
        png += path.stat().st_size
    return {"fakes_png_over_raw": png / raw if raw else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    ratio = make_photo_tree(args.demo, args.out)["fakes_png_over_raw"]
    sys.stdout.write(f"wrote {args.out}: fakes' PNG = {ratio:.2f} of raw pixels\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
