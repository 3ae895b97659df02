"""Images for the spectra command: up to N per generator (and N pooled reals) from a tree or a record set.

Each group's images are drawn at random (fixed seed, as the paper's "1000 randomly selected
images") from the requested split, or from any split when that one has none for the group, and
come back as uint8 [B, 3, S, S] batches cut to one size per group, so an accumulator can stream
them. Unreadable images are counted and skipped, never fatal.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.generators import generator_name

REAL = "real"
# A reader fetches one image's encoded payload, (kind, bytes | raw array) as records store it; the
# fetch runs on the calling thread (record readers need not be thread-safe), the decode in threads.
Reader = Callable[[], tuple[str, "bytes | np.ndarray"]]


@dataclass
class Group:
    """One panel of the figure: `real` or a generator name, with the readers of its chosen images."""

    name: str
    split: str
    readers: list[Reader] = field(default_factory=list)
    available: int = 0  # images of this group in the chosen split
    skipped: int = 0  # chosen images that could not be read or decoded


def _read_file(path: Path) -> tuple[str, bytes]:
    kind = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"  # PIL sniffs the real format
    return kind, path.read_bytes()


def _group_name(label: int, generator: int) -> str:
    return REAL if label == 0 else generator_name(generator)


@dataclass
class _Candidates:
    """Every image's position per (group, split), and how to make a reader for a position.

    Positions, not readers: a full GenImage record set has 2.7M samples and only a few thousand
    are ever read.
    """

    positions: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    reader_for: dict[str, Callable[[int], Reader]] = field(default_factory=dict)  # per split

    def add(self, name: str, split: str, position: int) -> None:
        self.positions.setdefault((name, split), []).append(position)


def _tree_candidates(src: Path) -> _Candidates:
    from genimage_fast.sources import scan_tree

    samples = scan_tree(src).samples
    found = _Candidates()
    for i, s in enumerate(samples):
        found.add(_group_name(s.label, s.generator), s.split, i)
    for split in {s.split for s in samples}:
        found.reader_for[split] = lambda i: functools.partial(_read_file, samples[i].path)
    return found


def _record_reader(split: Any, index: int) -> Reader:
    return functools.partial(split.read_encoded, index)


def _records_candidates(src: Path) -> _Candidates:
    from genimage_fast.records import open_records

    records = open_records(src)
    found = _Candidates()
    for split_name in records.splits:
        split = records.split(split_name)
        meta = split.meta
        for i, (label, gen) in enumerate(zip(meta["label"].tolist(), meta["generator"].tolist(), strict=True)):
            found.add(_group_name(label, gen), split_name, i)
        found.reader_for[split_name] = functools.partial(_record_reader, split)
    return found


def is_record_set(src: str | os.PathLike) -> bool:
    return (Path(src) / "manifest.json").is_file()


def collect_groups(src: str | os.PathLike, per_group: int, split: str, seed: int = 0) -> list[Group]:
    """Up to `per_group` image readers per group, `real` first, then generators in the paper's order."""
    path = Path(src)
    if not path.exists():
        raise GenImageError(f"{src}: no such file or folder")
    found = _records_candidates(path) if is_record_set(path) else _tree_candidates(path)
    if not found.positions:
        raise GenImageError(f"{src}: no images found")
    names = {name for name, _ in found.positions}
    rng = np.random.default_rng(seed)
    groups = []
    for name in sorted(names, key=_group_order):
        splits = [split] + sorted(s for n, s in found.positions if n == name and s != split)
        chosen = next(s for s in splits if (name, s) in found.positions)
        positions = found.positions[(name, chosen)]
        picked = np.sort(rng.choice(len(positions), size=min(per_group, len(positions)), replace=False))
        readers = [found.reader_for[chosen](positions[i]) for i in picked]
        groups.append(Group(name, chosen, readers, len(positions)))
    return groups


def _group_order(name: str) -> tuple[int, int]:
    from genimage_fast.generators import BY_NAME

    if name == REAL:
        return (0, 0)
    return (1, BY_NAME[name].id) if name in BY_NAME else (2, 0)


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """Center-crop HWC uint8 to size x size -> CHW; an image smaller than that is upscaled first
    (bicubic, shorter side to `size`), which adds its own smoothing to the spectrum."""
    height, width = image.shape[:2]
    if min(height, width) < size:
        scale = size / min(height, width)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
        height, width = image.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(image[top:top + size, left:left + size].transpose(2, 0, 1))


_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)  # PIL on corrupt files


def _try_fetch(reader: Reader) -> tuple[str, bytes | np.ndarray] | None:
    try:
        return reader()
    except _READ_ERRORS:
        return None


def _try_decode(encoded: tuple[str, bytes | np.ndarray] | None) -> np.ndarray | None:
    from genimage_fast.records import decode_image

    if encoded is None:
        return None
    try:
        image = decode_image(*encoded)
    except _READ_ERRORS:
        return None
    return image if image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) > 0 else None


def group_batches(group: Group, size: int, batch_size: int = 32, threads: int | None = None,
                  native: bool = True) -> Iterator[np.ndarray]:
    """uint8 [B, 3, S, S] batches of a group's readable images (unreadable ones count in group.skipped).

    S is `size`, except for a fake group whose images are smaller (native=True): then its own side,
    so a 128 px BigGAN is analysed as it is rather than through an upscaler's footprint.
    Payloads are fetched in order on this thread and decoded in threads (PIL releases the GIL).
    """
    side: int | None = None if (native and group.name != REAL) else size
    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(group.readers), batch_size):
            encoded = [_try_fetch(reader) for reader in group.readers[start:start + batch_size]]
            images = [im for im in pool.map(_try_decode, encoded) if im is not None]
            group.skipped += len(encoded) - len(images)
            if not images:
                continue
            if side is None:
                side = min(size, *(min(im.shape[:2]) for im in images))
            yield np.stack([fit_square(im, side) for im in images])
