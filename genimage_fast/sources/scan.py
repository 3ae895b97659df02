"""Scan a GenImage tree into samples (generator, split, label, class id) without opening any image.

`scan_tree` walks with os.scandir only (the release has 2.68M files), reads everything from folder
and file names, and reports stray files (`.DS_Store`, `Thumbs.db`, non-images) instead of taking them.
`scan_command` is the `genimage-fast scan` entry point.
"""

from __future__ import annotations

import json
import os
import sys
from operator import attrgetter
from pathlib import Path

from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATORS, UNKNOWN_GENERATOR, generator_name
from genimage_fast.sources.layout import LABEL_FOLDERS, SPLITS, Subset, find_subsets
from genimage_fast.sources.naming import class_id_from_name, skip_reason
from genimage_fast.sources.samples import LABEL_NAMES, ScanResult, Skipped, SourceSample

SKIPPED_KEY = "_skipped"  # the --json key for what the scan did not take (generator names never start with _)
_LIST_SKIPPED = 10  # stray files named in the table output


def _scan_label_folder(
    folder: str,
    prefix: str,
    split: str,
    label: int,
    generator: int,
    samples: list[SourceSample],
    skipped: list[Skipped],
) -> None:
    """Every image under one `{split}/{ai|nature}` folder (nested folders included)."""
    stack = [(folder, prefix)]
    while stack:
        current, rel = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                name = entry.name
                entry_rel = f"{rel}/{name}"
                if entry.is_dir():
                    if name.startswith("."):
                        skipped.append(Skipped(entry_rel + "/", "hidden folder"))
                    else:
                        stack.append((entry.path, entry_rel))
                    continue
                reason = skip_reason(name)
                if reason is not None:
                    skipped.append(Skipped(entry_rel, reason))
                    continue
                samples.append(
                    SourceSample(
                        Path(entry.path), entry_rel, split, label, generator, class_id_from_name(name, label, generator)
                    )
                )


def _stray_reason(name: str, expected: str) -> str:
    return "hidden file" if name.startswith(".") else f"not {expected}"


def _scan_subset(subset: Subset, generator: int, samples: list[SourceSample], skipped: list[Skipped]) -> None:
    base = f"{subset.prefix}/" if subset.prefix else ""
    with os.scandir(subset.path) as entries:
        for entry in sorted(entries, key=attrgetter("name")):
            if entry.name not in SPLITS or not entry.is_dir():
                skipped.append(Skipped(base + entry.name, _stray_reason(entry.name, "a train/ or val/ folder")))
                continue
            with os.scandir(entry.path) as labels:
                for label_entry in sorted(labels, key=attrgetter("name")):
                    rel = f"{base}{entry.name}/{label_entry.name}"
                    if label_entry.name not in LABEL_FOLDERS or not label_entry.is_dir():
                        skipped.append(Skipped(rel, _stray_reason(label_entry.name, "an ai/ or nature/ folder")))
                        continue
                    label = LABEL_FOLDERS[label_entry.name]
                    _scan_label_folder(label_entry.path, rel, entry.name, label, generator, samples, skipped)


def _check_generator(generator: int | None) -> None:
    if generator is not None and not (0 <= generator < len(GENERATORS) or generator == UNKNOWN_GENERATOR):
        raise GenImageError(f"generator id {generator} is not one of 0..{len(GENERATORS) - 1}")


def scan_tree(root: str | os.PathLike, generator: int | None = None) -> ScanResult:
    """Scan a GenImage tree (any accepted layout); samples sorted by relpath.

    `generator`: for subsets whose folders do not name a generator (the merged `imagenet_ai` layout),
    the id to give their samples (else -1); in a tree whose subsets are named, keep only that
    generator's subsets. A missing path or a tree without the layout raises GenImageError.
    """
    _check_generator(generator)
    root_path = Path(os.path.abspath(root))
    if not root_path.exists():
        raise GenImageError(f"{root} does not exist")
    if not root_path.is_dir():
        raise GenImageError(f"{root} is not a folder")
    if any((root_path / name).is_dir() for name in LABEL_FOLDERS):
        raise GenImageError(f"{root} looks like a split folder (it holds ai/ or nature/): give the folder above it")
    try:
        subsets, skipped = find_subsets(root_path)
    except OSError as exc:
        raise GenImageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if not subsets and generator is None:  # ForenSynths, UniversalFakeDetect, Synthbuster, ... trees
        from genimage_fast.sources.benchmarks import scan_other_benchmark

        other = scan_other_benchmark(root_path)
        if other is not None:
            return other
    if not subsets:
        raise GenImageError(
            f"{root} has no GenImage layout: expected {{train,val}}/{{ai,nature}} folders in it, in subset "
            f"folders (e.g. {GENERATORS[3].folder}), or under generator folders (e.g. {GENERATORS[3].parents[0]}/)"
        )
    if generator is not None and generator != UNKNOWN_GENERATOR:
        named = [s for s in subsets if s.generator != UNKNOWN_GENERATOR]
        if named:
            subsets = [s for s in named if s.generator == generator]
            if not subsets:
                folder = GENERATORS[generator].folder
                raise GenImageError(f"{root} has no {generator_name(generator)} subset ({folder})")
    samples: list[SourceSample] = []
    for subset in subsets:
        gid = subset.generator
        if gid == UNKNOWN_GENERATOR and generator is not None:
            gid = generator
        try:
            _scan_subset(subset, gid, samples, skipped)
        except OSError as exc:
            raise GenImageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    samples.sort(key=attrgetter("relpath"))
    skipped.sort(key=attrgetter("path"))
    return ScanResult(root_path, samples, skipped)


def format_counts(result: ScanResult) -> str:
    """The `scan` table: one row per generator x split, real / fake / total columns, then totals."""
    counts = result.counts()
    header = ("generator", "split", "real", "fake", "total")
    rows = []
    totals = dict.fromkeys(LABEL_NAMES, 0)
    for name, per_split in counts.items():
        for split, per_label in per_split.items():
            rows.append((name, split, per_label["real"], per_label["fake"], per_label["real"] + per_label["fake"]))
            for key in LABEL_NAMES:
                totals[key] += per_label[key]
    rows.append(("total", "", totals["real"], totals["fake"], totals["real"] + totals["fake"]))
    cells = [tuple(str(c) for c in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"{result.root}: {len(result.samples)} images"]
    for i, row in enumerate(cells):
        if i == len(cells) - 1:
            lines.append("  ".join("-" * w for w in widths))
        padded = (c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
        lines.append("  ".join(padded))
    # Val reals never carry a class (ILSVRC2012_val_*); anything else with -1 had a name we could not read.
    unnamed = sum(1 for s in result.samples if s.class_id < 0 and (s.label == 1 or s.split != "val"))
    if unnamed:
        lines.append(f"class unknown (-1) from the file name: {unnamed} images")
    lines.append(f"skipped: {len(result.skipped)}")
    for item in result.skipped[:_LIST_SKIPPED]:
        lines.append(f"  {item.path}: {item.reason}")
    if len(result.skipped) > _LIST_SKIPPED:
        lines.append(f"  ... and {len(result.skipped) - _LIST_SKIPPED} more (--json lists all)")
    return "\n".join(lines) + "\n"


def counts_json(result: ScanResult) -> dict:
    """The `scan --json` document: counts keyed by generator name, plus `_skipped`."""
    doc: dict = dict(result.counts())
    doc[SKIPPED_KEY] = [{"path": s.path, "reason": s.reason} for s in result.skipped]
    return doc


def scan_command(src: str, as_json: bool = False) -> int:
    """`genimage-fast scan SRC [--json]`."""
    result = scan_tree(src)
    if as_json:
        sys.stdout.write(json.dumps(counts_json(result), indent=2) + "\n")
    else:
        sys.stdout.write(format_counts(result))
    return 0
