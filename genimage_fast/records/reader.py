"""Opening record sets: `open_records(path)` -> RecordSet -> RecordSplit per split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genimage_fast.errors import GenImageError
from genimage_fast.records.formats import RECORD_FORMATS, RecordSplit
from genimage_fast.records.manifest import read_manifest
from genimage_fast.registry import close_matches


class RecordSet:
    """A converted record folder: its manifest and its splits."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self._format = RECORD_FORMATS.get(manifest["format"])
        self._splits: dict[str, RecordSplit] = {}
        if manifest.get("store") == "lossless":
            from genimage_fast.records.lossless import warm

            warm()  # before any loader forks its workers

    @property
    def format(self) -> str:
        return str(self.manifest["format"])

    @property
    def store(self) -> str:
        return str(self.manifest["store"])

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    @property
    def generator_names(self) -> dict[int, str]:
        """Other benchmarks' generators in these records (id >= 100 -> folder name); {} for GenImage."""
        return {int(k): str(v) for k, v in (self.manifest.get("generator_names") or {}).items()}

    def split(self, name: str) -> RecordSplit:
        if name not in self.manifest["splits"]:
            raise GenImageError(f"record set {str(self.root)!r} has no split {name!r}"
                                f"{close_matches(name, self.splits)}; it has: {', '.join(self.splits) or 'none'}")
        if name not in self._splits:
            self._splits[name] = self._format.split_class(self.root, name, self.manifest["splits"][name])
        return self._splits[name]

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={self.manifest['splits'][s]['count']}" for s in self.splits)
        return f"RecordSet({str(self.root)!r}, format={self.format}, store={self.store}, {counts})"


def open_records(path: str | Path) -> RecordSet:
    """Open a record folder (or its manifest.json); GenImageError if missing or not finished."""
    root = Path(path)
    manifest = read_manifest(root)
    return RecordSet(root if root.is_dir() else root.parent, manifest)
