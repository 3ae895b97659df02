"""Record formats: a writer (chunks -> files) and a reader (RecordSplit) per format, by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from genimage_fast.errors import GenImageError
from genimage_fast.records.imageio import decode_image
from genimage_fast.records.lossless import LosslessError
from genimage_fast.records.store import StoreSpec
from genimage_fast.records.tarshard import Record
from genimage_fast.registry import Registry

# Integer metadata per sample, in both formats (DESIGN §4.3 plus stored_quality and key).
META_INT_KEYS: tuple[str, ...] = (
    "label", "generator", "class_id", "source_format", "width", "height", "jpeg_quality",
    "stored_quality", "key",
)
STATE_DIR = ".state"  # per-chunk done markers (resume), match-real quality tables
STAGING_DIR = ".staging"  # FFCV: converted chunks waiting to be assembled into the split's .beton


def chunk_stem(split: str, chunk: int) -> str:
    """Deterministic name of a split's chunk (= DALI shard) from its index."""
    return f"{split}-{chunk:05d}"


class RecordSplit(ABC):
    """One split of a record set: random access to samples and their metadata."""

    def __init__(self, root: Path, name: str, info: dict[str, Any]) -> None:
        self.root, self.name, self.info = root, name, info

    def __len__(self) -> int:
        return int(self.info["count"])

    @property
    def files(self) -> list[Path]:
        """The record files (.tar shards or the .beton), in sample order."""
        return [self.root / entry["name"] for entry in self.info["files"]]

    @property
    @abstractmethod
    def meta(self) -> dict[str, Any]:
        """int64 arrays for META_INT_KEYS plus 'path': list[str], in record order."""

    def sample_meta(self, i: int) -> dict[str, Any]:
        """Sample i's metadata as a dict (formats with per-sample metadata read only that one)."""
        meta, i = self.meta, self._check_index(i)
        return {**{k: int(meta[k][i]) for k in META_INT_KEYS}, "path": meta["path"][i], "split": self.name}

    @abstractmethod
    def read_encoded(self, i: int) -> tuple[str, bytes | np.ndarray]:
        """(kind, payload) of sample i: 'jpeg'/'png' bytes or a 'raw' HWC uint8 array."""

    def read_image(self, i: int) -> np.ndarray:
        """Sample i decoded to HWC uint8 RGB; a damaged lossless payload is a GenImageError naming
        the record file and the sample."""
        kind, payload = self.read_encoded(i)
        try:
            return decode_image(kind, payload)
        except LosslessError as err:
            raise GenImageError(f"{self.locate(i)}: sample {self._check_index(i)} of split {self.name!r}: "
                                f"{err}") from None

    def locate(self, i: int) -> Path:
        """The record file holding sample i (from the manifest's per-file counts)."""
        i, start = self._check_index(i), 0
        for entry in self.info["files"]:
            start += int(entry["count"])
            if i < start:
                return self.root / entry["name"]
        return self.root

    def _check_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for split {self.name!r} of {n}")
        return i % n


class RecordFormat(ABC):
    """Writes converted chunks (in worker processes) and turns them into a split's final files."""

    name: str
    split_class: type[RecordSplit]

    @abstractmethod
    def check_available(self) -> None:
        """Raise GenImageError (before any work) when the format's library is missing."""

    def staged_store(self, spec: StoreSpec) -> StoreSpec:
        """The store mode the workers apply; a format may defer encoding to its own writer."""
        return spec

    @abstractmethod
    def write_chunk(self, out: Path, split: str, chunk: int, records: list[Record]) -> dict[str, Any]:
        """Write one chunk atomically; return what finalize_split needs (names, sha256, count)."""

    @abstractmethod
    def chunk_present(self, out: Path, entry: dict[str, Any]) -> bool:
        """Whether a chunk a done-marker describes is still on disk (resume check)."""

    @abstractmethod
    def chunk_files(self, out: Path, entry: dict[str, Any]) -> list[Path]:
        """The files write_chunk wrote for this entry (their sizes and hashes go into the marker)."""

    @abstractmethod
    def finalize_split(self, out: Path, split: str, chunks: list[dict[str, Any]], spec: StoreSpec,
                       workers: int) -> dict[str, Any]:
        """Produce the split's final files; return its manifest entry {count, files, sidecars}."""

    @abstractmethod
    def cleanup(self, out: Path, split: str, chunks: list[dict[str, Any]]) -> None:
        """Remove intermediate files once the manifest is written."""


RECORD_FORMATS: Registry[RecordFormat] = Registry("record format")
