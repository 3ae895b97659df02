"""`genimage-fast verify`: every record file's sha256 against the manifest."""

from __future__ import annotations

import sys
from pathlib import Path

from genimage_fast.errors import GenImageError
from genimage_fast.records.hashing import sha256_file
from genimage_fast.records.manifest import read_manifest


def verify(path: str | Path) -> int:
    """Check every file and sidecar; return how many were checked. GenImageError names a bad one."""
    root = Path(path)
    manifest = read_manifest(root)
    root = root if root.is_dir() else root.parent
    checked = 0
    for split, info in manifest["splits"].items():
        for entry in info["files"] + info.get("sidecars", []):
            file = root / entry["name"]
            if not file.is_file():
                raise GenImageError(f"verify: {entry['name']} (split {split}) is missing")
            if sha256_file(file) != entry["sha256"]:
                raise GenImageError(f"verify: {entry['name']} (split {split}) does not match its sha256 "
                                    "in the manifest: the file changed or is corrupt")
            checked += 1
        total = sum(int(e["count"]) for e in info["files"])
        if total != int(info["count"]):
            raise GenImageError(f"verify: split {split} lists {info['count']} samples but its files hold {total}")
    return checked


def verify_command(records: str) -> int:
    checked = verify(records)
    sys.stdout.write(f"OK: {checked} file(s) match the manifest\n")
    return 0
