"""manifest.json (DESIGN §4.3) and rejects.jsonl: building, atomic writing, reading."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from genimage_fast.atomic import atomic_write_text
from genimage_fast.errors import GenImageError
from genimage_fast.generators import generator_name

MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
MANIFEST_VERSION = 1


def shard_manifest_name(index: int, count: int) -> str:
    return f"manifest.shard-{index}-of-{count}.json"


def merge_counts(markers: list[dict[str, Any]], names: dict[int, str] | None = None) -> dict[str, dict[str, int]]:
    """{generator_name: {real, fake}} summed over chunk markers (which key by generator id); `names`
    names other benchmarks' generators."""
    counts: dict[str, dict[str, int]] = {}
    for marker in markers:
        for gid, row in marker["counts"].items():
            total = counts.setdefault(generator_name(int(gid), names), {"real": 0, "fake": 0})
            total["real"] += row["real"]
            total["fake"] += row["fake"]
    return dict(sorted(counts.items()))


def build_manifest(settings: dict[str, Any], splits: dict[str, dict[str, Any]],
                   markers: list[dict[str, Any]], rejects: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": settings["format"], "store": settings["store"], "max_side": settings["max_side"],
        "splits": splits, "counts": merge_counts(markers, {int(k): v for k, v in
                                                          (extra.get("generator_names") or {}).items()}),
        "rejects": rejects,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "version": MANIFEST_VERSION,
        **extra,
    }


def write_rejects(out: Path, rejects: list[dict[str, str]]) -> None:
    atomic_write_text(out / REJECTS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of a record set; GenImageError when the folder or manifest is missing/bad."""
    if not root.exists():
        raise GenImageError(f"record set {str(root)!r} does not exist")
    path = root / MANIFEST if root.is_dir() else root
    if not path.is_file():
        raise GenImageError(f"{str(root)!r} has no {MANIFEST} (not a converted record set, or convert "
                            f"has not finished)")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise GenImageError(f"{path}: manifest is not valid JSON ({exc})") from None
    for key in ("format", "store", "splits"):
        if key not in manifest:
            raise GenImageError(f"{path}: manifest lacks {key!r}")
    return manifest
