"""Find the GenImage subsets (folders holding `{train,val}/{ai,nature}`) under a given root.

Accepted roots: the release root with the generator parent folders (`ADM/imagenet_ai_0508_adm/...`),
a folder holding the subset folders directly, one subset folder itself, and the merged
`imagenet_ai/{train,val}/{ai,nature}` (or a folder holding it). Subsets are named by their folder
(`imagenet_ai_0508_adm`) or, failing that, by a parent folder (`ADM/...`); otherwise the generator
is unknown (-1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from genimage_fast.generators import BY_FOLDER, GENERATORS, UNKNOWN_GENERATOR
from genimage_fast.sources.samples import Skipped

SPLITS = ("train", "val")
LABEL_FOLDERS = {"nature": 0, "ai": 1}
MAX_DEPTH = 3  # release root -> parent -> subset, plus one enclosing folder

_FOLDER_LOWER = {name.lower(): g.id for name, g in BY_FOLDER.items()}
_PARENT_LOWER = {parent.lower(): g.id for g in GENERATORS for parent in g.parents}


@dataclass(frozen=True)
class Subset:
    path: Path  # the folder holding train/ and val/
    prefix: str  # its posix path relative to the scanned root ("" for the root itself)
    generator: int  # from the folder names, -1 when they do not say


def is_subset(path: Path) -> bool:
    """True when the folder holds at least one `{train,val}/{ai,nature}` folder."""
    return any((path / split / label).is_dir() for split in SPLITS for label in LABEL_FOLDERS)


def generator_from_names(names: list[str]) -> int:
    """The generator a subset belongs to from its folder name, else its nearest known parent's."""
    if names and names[-1].lower() in _FOLDER_LOWER:
        return _FOLDER_LOWER[names[-1].lower()]
    for name in reversed(names[:-1]):
        if name.lower() in _PARENT_LOWER:
            return _PARENT_LOWER[name.lower()]
    return UNKNOWN_GENERATOR


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def find_subsets(root: Path) -> tuple[list[Subset], list[Skipped]]:
    """Subsets under root (breadth-first, up to MAX_DEPTH levels) and the stray entries met on the way."""
    if is_subset(root):
        return [Subset(root, "", generator_from_names([root.name]))], []
    subsets: list[Subset] = []
    skipped: list[Skipped] = []
    level: list[tuple[Path, str]] = [(root, "")]
    for _ in range(MAX_DEPTH):
        below: list[tuple[Path, str]] = []
        for folder, prefix in level:
            with os.scandir(folder) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    rel = _join(prefix, entry.name)
                    if entry.name.startswith("."):
                        skipped.append(Skipped(rel, "hidden file" if not entry.is_dir() else "hidden folder"))
                    elif not entry.is_dir():
                        skipped.append(Skipped(rel, "outside the {train,val}/{ai,nature} layout"))
                    elif is_subset(Path(entry.path)):
                        subsets.append(Subset(Path(entry.path), rel, generator_from_names(rel.split("/"))))
                    else:
                        below.append((Path(entry.path), rel))
        level = below
    if subsets:
        # Folders left at the deepest level held no subset: say so rather than drop them silently.
        skipped.extend(Skipped(rel + "/", "no {train,val}/{ai,nature} folders inside") for _, rel in level)
    return subsets, skipped
