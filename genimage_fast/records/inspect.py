"""`genimage-fast inspect`: the manifest and the first records' metadata."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from genimage_fast.generators import generator_name
from genimage_fast.records.formats import META_INT_KEYS
from genimage_fast.records.reader import open_records


def inspect(path: str | Path, limit: int = 20) -> dict[str, Any]:
    """{"manifest": ..., "records": [...]} for the first `limit` records over the splits (0 = all)."""
    records_set = open_records(path)
    records: list[dict[str, Any]] = []
    for split in records_set.splits:
        part = records_set.split(split)
        take = len(part) if limit <= 0 else min(len(part), limit - len(records))
        for i in range(take):  # per sample, so a small --limit reads little of a large split
            meta = part.sample_meta(i)
            records.append({"path": meta["path"], "split": split, **{k: int(meta[k]) for k in META_INT_KEYS}})
        if 0 < limit <= len(records):
            break
    return {"manifest": records_set.manifest, "records": records}


def _table(result: dict[str, Any]) -> str:
    manifest = result["manifest"]
    lines = [f"format {manifest['format']}  store {manifest['store']}  max_side {manifest['max_side']}  "
             f"rejects {manifest['rejects']}  created {manifest.get('created', '?')}"]
    for split, info in manifest["splits"].items():
        lines.append(f"  {split}: {info['count']} samples in {len(info['files'])} file(s)")
    for name, row in manifest.get("counts", {}).items():
        lines.append(f"  {name:<12} real {row['real']:>8}  fake {row['fake']:>8}")
    lines.append(f"{'split':<6} {'label':>5} {'generator':<11} {'class':>5} {'fmt':>3} {'size':>11} {'q':>4}  path")
    for r in result["records"]:
        lines.append(f"{r['split']:<6} {r['label']:>5} {generator_name(r['generator']):<11} {r['class_id']:>5} "
                     f"{r['source_format']:>3} {r['width']:>5}x{r['height']:<5} {r['jpeg_quality']:>4}  {r['path']}")
    return "\n".join(lines)


def inspect_command(records: str, as_json: bool = False, limit: int = 20) -> int:
    result = inspect(records, limit)
    sys.stdout.write((json.dumps(result, indent=2) if as_json else _table(result)) + "\n")
    return 0
