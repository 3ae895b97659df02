"""What a resume must keep unchanged (the run's geometry) and the per-rank RNG seeding.

A checkpoint stores `geometry`: the settings that fix which samples each step sees and how the
RNG streams advance. Resuming with any of them changed would silently train a different run, so it
is refused with one line naming the key and both values.

Per-rank streams: every rank builds the model from the same seed (identical initial weights), then
reseeds torch / numpy / Python's global RNGs with a (seed, rank) stream, so dropout and drop-path
masks differ across ranks, as independent workers' would. Every rank's states are gathered into the
checkpoint (rank 0 writes one file holding all of them) and each rank gets its own back on resume.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genimage_fast.config import RecipeConfig
from genimage_fast.errors import GenImageError
from genimage_fast.generators import generator_name, parse_generators

STREAM_RNG_SALT = 0x5EED  # separates the global-RNG stream from the weight-init seed


def seed_rank_streams(seed: int, rank: int) -> None:
    """Reseed the global RNGs (dropout, drop-path, anything timm or torch draws) for (seed, rank)."""
    state = np.random.SeedSequence([int(seed), int(rank), STREAM_RNG_SALT]).generate_state(2, dtype=np.uint32)
    torch.manual_seed(int(state[0]) << 32 | int(state[1]))
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))


def record_set_identity(records: str | Path, split: str = "train") -> str:
    """A short hash of the split's files (names, sha256s, counts) from the manifest: the same record
    set converted again gives the same identity, a different one (other data, store) does not."""
    from genimage_fast.records import open_records

    info = open_records(records).manifest.get("splits", {}).get(split, {})
    files = [[f.get("name"), f.get("sha256"), f.get("count")] for f in info.get("files", [])]
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]


def run_geometry(cfg: RecipeConfig, world_size: int, records: str | Path) -> dict[str, Any]:
    """The settings a resume must not change, by the names the error message uses."""
    tc = cfg.train
    gens = parse_generators(cfg.data.generators)
    return {
        "world_size": int(world_size),
        "train.batch_size": int(tc.batch_size),  # per rank
        "global batch size": int(tc.batch_size * tc.grad_accum * world_size),
        "train.grad_accum": int(tc.grad_accum),
        "train.seed": int(tc.seed),
        "data.generators": ",".join(generator_name(g) for g in gens) if gens is not None else "all",
        "data.selection_fraction": float(cfg.data.selection_fraction),  # which train images are held out
        "record set (train split files)": record_set_identity(records),
    }


def check_geometry(saved: dict[str, Any] | None, now: dict[str, Any], checkpoint: Path) -> None:
    """GenImageError naming the first key whose value differs (keys an old checkpoint lacks pass)."""
    for key, value in now.items():
        if saved is not None and key in saved and saved[key] != value:
            raise GenImageError(f"cannot resume from {checkpoint}: {key} was {saved[key]} there, now {value} "
                                f"(start a new run with another --out, or restore the setting)")
