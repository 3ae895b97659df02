"""`genimage-fast demo-data`: a small deterministic GenImage tree in the official layout.

All 8 generators with their parent folders (`ADM/imagenet_ai_0508_adm/{train,val}/{ai,nature}`),
official file names, native fake sizes (PNG) and ImageNet-like reals (JPEG, 160-500 px, not square,
mostly q96, some q75-95, one grayscale and one CMYK). What each generator's fakes look like is in
`genimage_fast.sources.synth`. Every file has its own random stream seeded from (seed, generator,
split, label, index), and the encoders run with fixed settings: same arguments, same bytes.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATORS, Generator
from genimage_fast.sources import synth
from genimage_fast.sources.naming import NUM_CLASSES, fake_file_name, real_train_name, real_val_name
from genimage_fast.sources.png import encode_png_rgb

SPLIT_IDS = {"train": 0, "val": 1}
REAL_SIDES = (160, 500)  # reals' width and height range (px)
REAL_QUALITY = 96  # most ImageNet JPEGs
REAL_QUALITY_OTHER = (75, 95)  # the rest, uniform
OTHER_QUALITY_SHARE = 0.25
PNG_LEVEL = 1  # zlib level: fast (the 1024^2 midjourney PNGs dominate the run time)
# One odd real per tree, as in ImageNet: (generator name, mode), always train real number 0.
ODD_REALS = {"sdv14": "L", "adm": "CMYK"}
PARALLEL_MIN_PIXELS = 64 * 1024 * 1024  # below this much fake output, process start-up costs more than it saves


@dataclass(frozen=True)
class DemoFile:
    relpath: str
    generator: Generator
    split: str
    label: int  # 0 real, 1 fake
    class_id: int  # -1 for val reals (their names carry no class)
    index: int  # position among this (generator, split, label)'s files: seeds its random stream


def val_per_class(per_class: int) -> int:
    """Fakes per class in val: about half of train, at least 2."""
    return max(2, per_class // 2)


def pick_classes(classes: int, seed: int) -> list[int]:
    """`classes` distinct ImageNet class ids, sorted, chosen by the seed."""
    if not 1 <= classes <= NUM_CLASSES:
        raise GenImageError(f"--classes must be 1..{NUM_CLASSES}, got {classes}")
    rng = np.random.default_rng([_seed_word(seed), 0xC1A55])
    return sorted(int(c) for c in rng.choice(NUM_CLASSES, size=classes, replace=False))


def _seed_word(seed: int) -> int:
    return seed % (1 << 64)  # SeedSequence needs non-negative words; negative seeds stay distinct


def plan_demo(classes: int, per_class: int, seed: int) -> list[DemoFile]:
    """Every file of the tree with its metadata (no pixels yet)."""
    if per_class < 1:
        raise GenImageError(f"--per-class must be at least 1, got {per_class}")
    class_ids = pick_classes(classes, seed)
    files: list[DemoFile] = []
    for gen in GENERATORS:
        subset = f"{gen.parents[0]}/{gen.folder}"
        names_rng = np.random.default_rng([_seed_word(seed), gen.id, 0x4E4D])
        fake_index = 0  # running over both splits, so names stay unique in a subset
        for split, per in (("train", per_class), ("val", val_per_class(per_class))):
            for i in range(per * len(class_ids)):
                cls = class_ids[i // per]
                name = fake_file_name(gen.name, cls, fake_index)
                files.append(DemoFile(f"{subset}/{split}/ai/{name}", gen, split, 1, cls, i))
                fake_index += 1
            if split == "train":
                numbers = names_rng.choice(np.arange(1, 13001), size=per * len(class_ids), replace=False)
                owners = [class_ids[i // per] for i in range(len(numbers))]
                reals = [(cls, real_train_name(cls, int(n))) for cls, n in zip(owners, numbers, strict=True)]
            else:
                numbers = np.sort(names_rng.choice(np.arange(1, 50001), size=per * len(class_ids), replace=False))
                reals = [(-1, real_val_name(int(n))) for n in numbers]
            for i, (cls, name) in enumerate(reals):
                files.append(DemoFile(f"{subset}/{split}/nature/{name}", gen, split, 0, cls, i))
    return files


def _file_rng(seed: int, f: DemoFile) -> np.random.Generator:
    return np.random.default_rng([_seed_word(seed), f.generator.id, SPLIT_IDS[f.split], f.label, f.index])


def _real_bytes(f: DemoFile, rng: np.random.Generator) -> bytes:
    width, height = (int(v) for v in rng.integers(REAL_SIDES[0], REAL_SIDES[1] + 1, size=2))
    if width == height:
        width = width - 1 if width > REAL_SIDES[0] else width + 1
    quality = REAL_QUALITY
    if rng.random() < OTHER_QUALITY_SHARE:
        quality = int(rng.integers(REAL_QUALITY_OTHER[0], REAL_QUALITY_OTHER[1] + 1))
    # Train reals have a class (their WordNet id); val reals draw one only for their colours.
    colour_class = f.class_id if f.class_id >= 0 else int(rng.integers(NUM_CLASSES))
    image = Image.fromarray(synth.real_photo(rng, colour_class, height, width))
    if f.split == "train" and f.index == 0 and f.generator.name in ODD_REALS:
        image = image.convert(ODD_REALS[f.generator.name])
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()


def _fake_bytes(f: DemoFile, rng: np.random.Generator) -> bytes:
    return encode_png_rgb(synth.fake_image(rng, f.generator.name, f.class_id, f.generator.size), PNG_LEVEL)


def render(f: DemoFile, seed: int) -> bytes:
    """The encoded bytes of one demo file."""
    rng = _file_rng(seed, f)
    return _fake_bytes(f, rng) if f.label == 1 else _real_bytes(f, rng)


def _prepare_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenImageError(f"{out} already exists and is not an empty folder; remove it or choose another")


def _write_files(root: str, seed: int, files: list[DemoFile]) -> None:
    for f in files:
        target = Path(root) / f.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render(f, seed))


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _write_parallel(root: Path, seed: int, files: list[DemoFile], workers: int) -> None:
    """Spread the files over processes: interleaved chunks of a costliest-first order balance the load."""
    ordered = sorted(files, key=lambda f: -(f.generator.size if f.label else 0))
    chunks = [ordered[i :: workers * 4] for i in range(workers * 4)]
    # spawn, not fork: the caller may hold torch / OpenMP threads that a forked child would inherit.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for future in [pool.submit(_write_files, str(root), seed, chunk) for chunk in chunks if chunk]:
            future.result()


def make_demo_data(
    out: str | os.PathLike, classes: int = 4, per_class: int = 8, seed: int = 0, workers: int | None = None
) -> Path:
    """Write the demo tree into `out` (new or empty folder) atomically; returns its path.

    `workers`: processes to render with (default: the CPUs available, when the tree is big enough to
    gain from it). The bytes do not depend on it.
    """
    out_path = Path(out)
    _prepare_out(out_path)
    files = plan_demo(classes, per_class, seed)
    if workers is None:
        fake_pixels = sum(f.generator.size**2 for f in files if f.label)
        workers = _available_cpus() if fake_pixels >= PARALLEL_MIN_PIXELS else 1
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target, then rename: an interrupted run leaves no half tree at `out`.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent))
    try:
        if workers > 1:
            _write_parallel(tmp, seed, files, workers)
        else:
            _write_files(str(tmp), seed, files)
        if out_path.exists():
            out_path.rmdir()  # empty (checked above)
        os.replace(tmp, out_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_path


def demo_data_command(out: str, classes: int = 4, per_class: int = 8, seed: int = 0) -> int:
    """`genimage-fast demo-data OUT [--classes K] [--per-class N] [--seed S]`."""
    path = make_demo_data(out, classes=classes, per_class=per_class, seed=seed)
    fakes = len(GENERATORS) * classes * (per_class + val_per_class(per_class))
    sys.stdout.write(f"wrote {path}: {len(GENERATORS)} generators, {2 * fakes} images ({fakes} fake, {fakes} real)\n")
    return 0
