"""sha256 of files, streamed (record files can be GBs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 22


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
