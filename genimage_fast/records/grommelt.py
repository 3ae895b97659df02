"""`convert --protocol grommelt`: Grommelt et al.'s unbiased GenImage ("Fake or JPEG?", 2024).

Their headline protocol (DESIGN §2; code: gendetection/UnbiasedGenImage), on the records:
- JPEG: every fake is stored as PIL's JPEG at quality 96 (`jpeg_augment.py`: `image.save(buf, "JPEG",
  quality=qf)`, PIL's default 4:2:0; their `optimice=True` is a misspelt keyword PIL ignores);
  reals keep their bytes, and only reals whose estimated quality is exactly 96 are kept. The estimate
  is theirs (`compute_qf.py`): the IJG quality whose standard luminance table is closest (MSE) to the
  file's, searched from 100 down and stopped at the first increase (`grommelt_quality`).
- Size: reals are kept only when width and height both lie in [min_size, max_size] around their
  subset's native fake size (`get_data.py`, SIZE_CONSTRAINED), and each split's fakes are subsampled
  (seed 42) to the kept reals' count; optionally class-balanced instead (`balance_per_class`: per
  ImageNet class, min(reals, fakes) of each, seed 42).
- Every image is centre-cropped to min_size before the usual augmentation (`get_transform.py`:
  `T.CenterCrop(args.cropsize)`): a load-time step, recorded in the manifest's `protocol`.

Windows: their example is 450–550 for the 512-px generators; the others scale the same ratios
(450/512, 550/512, i.e. about -12% / +7%): 1024 -> 900–1100, 256 -> 225–275, 128 -> 112–138.
A fake subset with more fakes than kept reals is cut to the reals' count; one with fewer keeps all
its fakes (pandas' `sample(n)` would raise; the count mismatch is recorded).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATORS, UNKNOWN_GENERATOR, generator_name
from genimage_fast.records.quality import STD_LUMINANCE, read_quant_tables, scaled_table

PROTOCOLS = ("grommelt", "grommelt-balanced")  # -balanced: their balance_per_class option
JPEG_QUALITY = 96
SEED = 42
_RATIO_MIN, _RATIO_MAX = 450 / 512, 550 / 512
_LUMA_BY_Q = {q: scaled_table(STD_LUMINANCE, q)[0].astype(np.float64) for q in range(0, 101)}


def size_window(native: int) -> tuple[int, int]:
    """[min_size, max_size] for a generator's native size (450–550 at 512, their example)."""
    return int(round(native * _RATIO_MIN)), int(round(native * _RATIO_MAX))


def grommelt_quality(jpeg_bytes: bytes) -> int:
    """compute_qf.py's estimate: closest IJG luminance table by MSE, from q=100 down, first increase
    stops; ties go to the lower quality (their `d <= d_best`). -1 when not a JPEG."""
    tables = read_quant_tables(jpeg_bytes)
    if 0 not in tables:
        return -1
    luma = tables[0].astype(np.float64)
    best_d, best_q = np.inf, 0
    for q in range(100, -1, -1):
        d = float(np.mean((_LUMA_BY_Q[q] - luma) ** 2))
        if d <= best_d:
            best_d, best_q = d, q
        else:
            break
    return best_q


def image_size(path: str) -> tuple[int, int]:
    """(width, height) from the header alone (PIL reads no pixels); (0, 0) when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError, struct.error):
        return 0, 0


@dataclass(frozen=True)
class RealInfo:
    quality: int
    width: int
    height: int


def real_info(path: str) -> RealInfo:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return RealInfo(-1, 0, 0)
    width, height = image_size(path)
    return RealInfo(grommelt_quality(data), width, height)


def _window_of(generator: int) -> tuple[int, int]:
    if generator == UNKNOWN_GENERATOR:
        raise GenImageError("--protocol grommelt needs each subset's generator (its size window); "
                            "the merged imagenet_ai layout does not name it")
    return size_window(GENERATORS[generator].size)


def select(items_by_split: dict[str, list], class_balanced: bool = False, workers: int = 1,
           ) -> tuple[dict[str, list], dict]:
    """The protocol's selection over convert's Items; returns (kept items per split, manifest record)."""
    reals = [it for items in items_by_split.values() for it in items if it.label == 0]
    if workers > 1 and len(reals) > 256:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            infos = list(pool.map(real_info, [it.path for it in reals], chunksize=256))
    else:
        infos = [real_info(it.path) for it in reals]
    info_of = {it.path: info for it, info in zip(reals, infos, strict=True)}
    kept_by_split: dict[str, list] = {}
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for split, items in items_by_split.items():
        by_gen: dict[int, dict[int, list]] = defaultdict(lambda: {0: [], 1: []})
        for it in items:
            by_gen[it.generator][it.label].append(it)
        kept: list = []
        for gen, groups in sorted(by_gen.items()):
            lo, hi = _window_of(gen)

            def ok(it, lo=lo, hi=hi) -> bool:
                info = info_of[it.path]
                return info.quality == JPEG_QUALITY and lo <= info.width <= hi and lo <= info.height <= hi

            real_kept = [it for it in groups[0] if ok(it)]
            fakes = sorted(groups[1], key=lambda it: it.relpath)
            if class_balanced:
                real_kept, fake_kept = _balance_per_class(real_kept, fakes)
            else:
                fake_kept = _subsample(fakes, len(real_kept))
            kept += real_kept + [replace(it, drawn_quality=JPEG_QUALITY) for it in fake_kept]
            counts.setdefault(split, {})[generator_name(gen)] = {
                "real_in": len(groups[0]), "real_kept": len(real_kept), "fake_in": len(groups[1]),
                "fake_kept": len(fake_kept)}
        kept.sort(key=lambda it: it.relpath)
        kept_by_split[split] = [replace(it, key=i) for i, it in enumerate(kept)]
    gens = sorted({it.generator for items in items_by_split.values() for it in items})
    record = {
        "name": "grommelt",
        "fake_jpeg_quality": JPEG_QUALITY,
        "real_quality": JPEG_QUALITY,
        "quality_estimator": "closest IJG luminance table (MSE), as UnbiasedGenImage compute_qf.py",
        "size_windows": {generator_name(g): list(_window_of(g)) for g in gens},
        "center_crop": {generator_name(g): _window_of(g)[0] for g in gens},
        "seed": SEED,
        "class_balanced": bool(class_balanced),
        "counts": counts,
    }
    return kept_by_split, record


def _subsample(fakes: Sequence, n: int) -> list:
    """n fakes drawn without replacement, seed 42 (all of them when there are no more than n)."""
    if n >= len(fakes):
        return list(fakes)
    picks = np.random.RandomState(SEED).choice(len(fakes), size=n, replace=False)
    return [fakes[i] for i in sorted(picks)]


def _balance_per_class(reals: Sequence, fakes: Sequence) -> tuple[list, list]:
    """balance_per_class: per class, min(reals, fakes) of each, seed 42 (unknown classes dropped)."""
    by_class: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    for side, items in ((0, reals), (1, fakes)):
        for it in items:
            by_class[it.class_id][side].append(it)
    out_r, out_f = [], []
    for cls in sorted(by_class):
        if cls < 0:
            continue
        r, f = (sorted(group, key=lambda it: it.relpath) for group in by_class[cls])
        n = min(len(r), len(f))
        out_r += _subsample(r, n)
        out_f += _subsample(f, n)
    return out_r, out_f


def check_protocol(protocol: str | None, store: str) -> None:
    """--protocol takes one of PROTOCOLS and the default store (it decides each image's encoding)."""
    if protocol is None:
        return
    if protocol not in PROTOCOLS:
        from genimage_fast.registry import close_matches

        raise GenImageError(f"unknown protocol {protocol!r}{close_matches(protocol, list(PROTOCOLS))}; "
                            f"choose from: {', '.join(PROTOCOLS)}")
    if store != "original":
        raise GenImageError(f"--protocol {protocol} sets each image's encoding itself (fakes PIL JPEG q96, reals "
                            f"their own bytes): leave --store at original (got {store!r})")
