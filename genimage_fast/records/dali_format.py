"""DALI / webdataset format: the chunks are the final tar shards, each with its wds2idx index."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from genimage_fast.records.formats import META_INT_KEYS, RECORD_FORMATS, RecordFormat, RecordSplit, chunk_stem
from genimage_fast.records.imageio import EXTENSION_KINDS
from genimage_fast.records.store import StoreSpec
from genimage_fast.records.tarshard import IndexEntry, Record, ShardFile, read_index, write_shard


class DaliSplit(RecordSplit):
    """Reads shards through their .idx files and memory maps; metadata from the JSON members."""

    @cached_property
    def _entries(self) -> list[tuple[int, IndexEntry]]:
        entries = []
        for shard_no, path in enumerate(self.files):
            entries.extend((shard_no, entry) for entry in read_index(path.with_suffix(".idx")))
        return entries

    @cached_property
    def _shards(self) -> list[ShardFile]:
        return [ShardFile(path) for path in self.files]

    def _member(self, i: int, ext: str) -> bytes:
        shard_no, entry = self._entries[self._check_index(i)]
        return self._shards[shard_no].read(*entry.members[ext])

    def sample_meta(self, i: int) -> dict[str, Any]:
        """The JSON metadata stored beside sample i."""
        return json.loads(self._member(i, "json"))

    @cached_property
    def meta(self) -> dict[str, Any]:
        rows = [self.sample_meta(i) for i in range(len(self))]
        meta: dict[str, Any] = {k: np.array([r[k] for r in rows], dtype=np.int64) for k in META_INT_KEYS}
        meta["path"] = [r["path"] for r in rows]
        return meta

    def read_encoded(self, i: int) -> tuple[str, bytes | np.ndarray]:
        _, entry = self._entries[self._check_index(i)]
        ext = entry.image_ext
        data = self._member(i, ext)
        kind = EXTENSION_KINDS[ext]
        if kind == "raw":
            shape = self.sample_meta(i)["raw_shape"]
            return kind, np.frombuffer(data, dtype=np.uint8).reshape(shape)
        return kind, data


class DaliFormat(RecordFormat):
    name = "dali"
    split_class = DaliSplit

    def check_available(self) -> None:
        """Shards are written and read with tarfile: nothing to check."""

    def write_chunk(self, out: Path, split: str, chunk: int, records: list[Record]) -> dict[str, Any]:
        path = out / f"{chunk_stem(split, chunk)}.tar"
        if not records:  # every input of the chunk was rejected: no empty shard (DALI rejects them)
            return {"name": path.name, "sha256": None, "count": 0}
        tar_sha, idx_sha = write_shard(path, records)
        return {"name": path.name, "sha256": tar_sha, "count": len(records),
                "index": {"name": path.with_suffix(".idx").name, "sha256": idx_sha}}

    def chunk_present(self, out: Path, entry: dict[str, Any]) -> bool:
        return entry["count"] == 0 or ((out / entry["name"]).is_file() and (out / entry["index"]["name"]).is_file())

    def chunk_files(self, out: Path, entry: dict[str, Any]) -> list[Path]:
        return [] if entry["count"] == 0 else [out / entry["name"], out / entry["index"]["name"]]

    def finalize_split(self, out: Path, split: str, chunks: list[dict[str, Any]], spec: StoreSpec,
                       workers: int) -> dict[str, Any]:
        written = [c for c in chunks if c["count"]]
        return {
            "count": sum(c["count"] for c in written),
            "files": [{"name": c["name"], "sha256": c["sha256"], "count": c["count"]} for c in written],
            "sidecars": [dict(c["index"]) for c in written],
        }

    def cleanup(self, out: Path, split: str, chunks: list[dict[str, Any]]) -> None:
        """The shards are the final files: nothing to remove."""


RECORD_FORMATS.add(DaliFormat.name, DaliFormat())
