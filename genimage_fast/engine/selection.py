"""Model selection without looking at `val`: a seeded, class-balanced selection set carved out of `train`.

GenImage has no test split: `val` is what the paper reports, so choosing `best.pt` on it is optimistic
(DESIGN §2). With `data.selection_fraction` f > 0, `train` holds out, from every (label, generator)
group of the training split (restricted to `data.generators`), round(f * n) samples drawn with the
run's seed (at least one per group of two or more, never the whole group); they are excluded from
training, validated on, and `best.pt` is picked on them. `eval` then reports on `val`.
With f = 0 nothing is held out and selection happens on `val`, which the run's summary records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genimage_fast.errors import GenImageError
from genimage_fast.generators import parse_generators

SELECTION_STREAM = 0x5E1  # keeps this draw apart from the loaders' order/crop streams


@dataclass(frozen=True)
class SelectionSplit:
    """Indices into the train split: what is trained on and what selects the checkpoint."""

    train: np.ndarray  # int64, sorted
    selection: np.ndarray  # int64, sorted, disjoint from train
    fraction: float
    seed: int

    def describe(self) -> dict[str, object]:
        """The summary's `selection` entry."""
        return {"set": "train-holdout", "fraction": self.fraction, "seed": self.seed,
                "images": int(len(self.selection))}


def carve_selection(labels: np.ndarray, generators: np.ndarray, fraction: float, seed: int,
                    keep: np.ndarray | None = None) -> SelectionSplit:
    """Split the positions `keep` (default all) into train / selection, per (label, generator) group."""
    if not 0.0 < fraction < 1.0:
        raise GenImageError(f"data.selection_fraction must be in [0, 1) (got {fraction})")
    labels, generators = np.asarray(labels, dtype=np.int64), np.asarray(generators, dtype=np.int64)
    keep = np.arange(len(labels), dtype=np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
    rng = np.random.default_rng([int(seed), SELECTION_STREAM])
    held: list[np.ndarray] = []
    groups = sorted({(int(y), int(g)) for y, g in zip(labels[keep], generators[keep], strict=True)})
    for label, gen in groups:  # a fixed group order: the draw depends only on (seed, data)
        members = keep[(labels[keep] == label) & (generators[keep] == gen)]
        n = len(members)
        take = min(max(int(round(fraction * n)), 1 if n >= 2 else 0), n - 1)
        if take > 0:
            held.append(np.sort(rng.permutation(members)[:take]))
    selection = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    if len(selection) == 0:
        raise GenImageError(f"data.selection_fraction={fraction}: the train split is too small to hold out "
                            f"a selection set (need 2+ images per label and generator)")
    train = np.setdiff1d(keep, selection).astype(np.int64)
    return SelectionSplit(train=train, selection=selection.astype(np.int64), fraction=float(fraction), seed=int(seed))


def selection_for_run(records: str | Path, fraction: float, seed: int,
                      generators: Sequence[str | int] | None) -> SelectionSplit | None:
    """The run's selection split of RECORDS' train split (None when fraction is 0)."""
    if fraction == 0:
        return None
    from genimage_fast.records import open_records

    meta = open_records(records).split("train").meta
    gens = np.asarray(meta["generator"], dtype=np.int64)
    ids = parse_generators(list(generators) if generators else None)
    keep = np.flatnonzero(np.isin(gens, ids)) if ids is not None else None
    return carve_selection(meta["label"], gens, fraction, seed, keep)


def selection_label(has_val: bool) -> dict[str, object]:
    """The summary's `selection` entry when nothing is held out: val selects best.pt (or nothing does)."""
    if has_val:
        return {"set": "val", "note": "best.pt chosen on val, the split eval reports: optimistic "
                                      "(GenImage has no test split; set data.selection_fraction)"}
    return {"set": "none", "note": "no validation: best.pt is never written, eval scores last.pt"}
