"""What a scan returns: one SourceSample per image, one Skipped per stray file, and their counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from genimage_fast.generators import generator_name

LABEL_NAMES = ("real", "fake")  # label 0, label 1


class SourceSample(NamedTuple):
    """One image of a GenImage tree (a NamedTuple: millions are made per scan, so it stays cheap)."""

    path: Path  # absolute
    relpath: str  # posix, relative to the scanned root
    split: str  # "train" | "val"
    label: int  # 0 real, 1 fake
    generator: int  # -1 unknown; for a real, the generator of the subset it sits in
    class_id: int  # 0-999, -1 unknown


class Skipped(NamedTuple):
    """A file (or folder) the scan did not take, and why."""

    path: str  # relative to the scanned root
    reason: str


@dataclass
class ScanResult:
    root: Path
    samples: list[SourceSample] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    generator_names: dict[int, str] = field(default_factory=dict)  # other benchmarks' generators (ids >= 100)

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """{generator_name: {split: {"real": n, "fake": n}}}, generators in id order (unknown last)."""
        tally: dict[tuple[int, str, int], int] = {}
        for s in self.samples:
            key = (s.generator, s.split, s.label)
            tally[key] = tally.get(key, 0) + 1
        out: dict[str, dict[str, dict[str, int]]] = {}
        for gid, split, label in sorted(tally, key=lambda k: (k[0] < 0, k[0], k[1] != "train", k[1], k[2])):
            per_split = out.setdefault(generator_name(gid, self.generator_names), {})
            per_label = per_split.setdefault(split, dict.fromkeys(LABEL_NAMES, 0))
            per_label[LABEL_NAMES[label]] = tally[(gid, split, label)]
        return out
