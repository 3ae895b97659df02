"""Other benchmarks' layouts, mapped onto GenImage's convention (label, generator, split).

Recognised when a tree is not in GenImage's `{train,val}/{ai,nature}` layout:

- `0_real/1_fake` trees: ForenSynths / CNNDetection (`train|val/<lsun class>/{0_real,1_fake}`, all
  ProGAN; `test/<generator>[/<class>]/{0_real,1_fake}`), UniversalFakeDetect
  (`diffusion_datasets/<generator>/{0_real,1_fake}`), AIGCDetectBenchmark and SIDBench
  (`[test/]<generator>[/<class>]/{0_real,1_fake}`), Chameleon (`[Chameleon/]test/{0_real,1_fake}`: the
  generator is the folder above the split, `chameleon`). The split is the `train`/`val`/`test`
  folder on the way (none: `test`); the generator is the first folder after it (LSUN class folders
  under train/val mean ProGAN, as in ForenSynths), else the tree's own folder name.
- Synthbuster: one folder of fakes per generator (`dalle2`, `midjourney-v5`, `stable-diffusion-xl`,
  ...) and the RAISE reals beside them (`RAISE`, `raise`, `raise-1k`): split `test`; the reals form
  their own generator column, `raise` (they are shared by every generator, so per-generator cells
  are the fakes' accuracy and `raise` the reals').

A folder named after a GenImage generator (AIGCDetectBenchmark's `ADM`, `Glide`, `Midjourney`,
`stable_diffusion_v_1_4`, `wukong`, ...) takes that generator's id, so cross-benchmark tables line
up; any other generator keeps its folder's name (lower-cased) and gets an id from
EXTRA_GENERATOR_BASE on, in name order, named in the scan's `generator_names`.
"""

from __future__ import annotations

import os
from pathlib import Path

from genimage_fast.generators import EXTRA_GENERATOR_BASE, genimage_generator
from genimage_fast.sources.naming import skip_reason
from genimage_fast.sources.samples import ScanResult, Skipped, SourceSample

LABELS = {"0_real": 0, "1_fake": 1}
SPLIT_FOLDERS = ("train", "val", "test")
DEFAULT_SPLIT = "test"
LSUN_CLASSES = frozenset((  # ForenSynths' 20 ProGAN training classes
    "airplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"))
SYNTHBUSTER_GENERATORS = frozenset((
    "dalle2", "dalle3", "firefly", "glide", "midjourney-v5", "stable-diffusion-1-3", "stable-diffusion-1-4",
    "stable-diffusion-2", "stable-diffusion-xl"))
RAISE_FOLDERS = ("raise", "raise-1k", "raise_1k")
MAX_DEPTH = 5


def _label_folders(root: Path) -> list[Path]:
    """Every 0_real / 1_fake folder up to MAX_DEPTH levels down (sorted)."""
    found: list[Path] = []
    level = [root]
    for _ in range(MAX_DEPTH):
        below = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if not entry.is_dir() or entry.name.startswith("."):
                    continue
                (found if entry.name in LABELS else below).append(Path(entry.path))
        level = below
    return found


def _shared_prefix(root: Path, folders: list[Path]) -> int:
    """How many leading folders every split-less label folder's path shares (`diffusion_datasets/`
    above UniversalFakeDetect's generators): the generator is the first folder after them."""
    paths = [f.relative_to(root).parts[:-1] for f in folders]
    paths = [p for p in paths if not any(c.lower() in SPLIT_FOLDERS for c in p)]
    if not paths:
        return 0
    n = 0
    while all(len(p) > n and p[n] == paths[0][n] for p in paths):
        n += 1
    return n


def _place(root: Path, label_folder: Path, shared: int = 0) -> tuple[str, str, str]:
    """(split, generator folder name, relative label folder) of one 0_real/1_fake folder; `shared`:
    leading folders common to every split-less label folder (see _shared_prefix)."""
    parts = label_folder.relative_to(root).parts[:-1]
    split_at = next((i for i, p in enumerate(parts) if p.lower() in SPLIT_FOLDERS), None)
    if split_at is None:
        split, rest = DEFAULT_SPLIT, list(parts[shared:])
        owner = parts[shared - 1] if shared > 0 else root.name
    else:
        split, rest = parts[split_at].lower(), list(parts[split_at + 1:])
        owner = parts[split_at - 1] if split_at > 0 else root.name
    if rest and split in ("train", "val") and rest[0].lower() in LSUN_CLASSES:
        generator = "progan"  # ForenSynths: train/val hold ProGAN images by LSUN class
    elif rest:
        generator = rest[0]
    else:
        generator = owner
    return split, generator, label_folder.relative_to(root).as_posix()


def _images(folder: Path, rel: str, skipped: list[Skipped]) -> list[tuple[Path, str]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        sub = base.relative_to(folder).as_posix()
        prefix = rel if sub == "." else f"{rel}/{sub}"
        for name in sorted(filenames):
            reason = skip_reason(name)
            if reason:
                skipped.append(Skipped(f"{prefix}/{name}", reason))
            else:
                out.append((base / name, f"{prefix}/{name}"))
    return out


class _Ids:
    """Generator ids: GenImage's for its own generators, then EXTRA_GENERATOR_BASE + rank by name."""

    def __init__(self, names: set[str]) -> None:
        extra = sorted({n.lower() for n in names if genimage_generator(n) is None})
        self.extra = {name: EXTRA_GENERATOR_BASE + i for i, name in enumerate(extra)}

    def __call__(self, name: str) -> int:
        gid = genimage_generator(name)
        return gid if gid is not None else self.extra[name.lower()]

    @property
    def names(self) -> dict[int, str]:
        return {gid: name for name, gid in self.extra.items()}


def scan_zero_one(root: Path) -> ScanResult | None:
    """A `0_real/1_fake` tree, or None when there is no such folder."""
    folders = _label_folders(root)
    if not folders:
        return None
    shared = _shared_prefix(root, folders)
    placed = [(f, *_place(root, f, shared)) for f in folders]
    ids = _Ids({gen for _, _, gen, _ in placed})
    samples, skipped = [], []
    for folder, split, gen, rel in placed:
        label = LABELS[folder.name]
        for path, relpath in _images(folder, rel, skipped):
            samples.append(SourceSample(path, relpath, split, label, ids(gen), -1))
    return ScanResult(root, sorted(samples, key=lambda s: s.relpath), sorted(skipped, key=lambda s: s.path),
                      generator_names=ids.names)


def scan_synthbuster(root: Path) -> ScanResult | None:
    """Synthbuster: generator folders of fakes + a RAISE folder of reals; None when it is not that."""
    subdirs = {e.name: Path(e.path) for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")}
    known = {n for n in subdirs if n.lower() in SYNTHBUSTER_GENERATORS}
    reals = [n for n in subdirs if n.lower() in RAISE_FOLDERS]
    if len(known) < 2 and not (known and reals):
        return None
    fake_folders = sorted(n for n in subdirs if n not in reals)
    ids = _Ids(set(fake_folders) | ({"raise"} if reals else set()))
    samples, skipped = [], []
    for name in fake_folders:
        for path, relpath in _images(subdirs[name], name, skipped):
            samples.append(SourceSample(path, relpath, DEFAULT_SPLIT, 1, ids(name), -1))
    for name in reals:
        for path, relpath in _images(subdirs[name], name, skipped):
            samples.append(SourceSample(path, relpath, DEFAULT_SPLIT, 0, ids("raise"), -1))
    return ScanResult(root, sorted(samples, key=lambda s: s.relpath), sorted(skipped, key=lambda s: s.path),
                      generator_names=ids.names)


def scan_other_benchmark(root: Path) -> ScanResult | None:
    """The first of the other layouts that fits `root`, or None."""
    return scan_synthbuster(root) or scan_zero_one(root)
