"""FFCV format: workers stage converted chunks as tar shards; the split's .beton is assembled from them.

Fields of `<split>.beton` (names as FFCV sees them):
- `image`: store original / match-real -> `BytesField` holding the encoded JPEG or PNG bytes
  (FFCV has no PNG mode; tell the two apart by magic bytes, PNG starts with b"\\x89PNG");
  store raw -> `RGBImageField(write_mode="raw")`; store jpeg:Q -> `RGBImageField(write_mode="jpg",
  jpeg_quality=Q)` (encoded by FFCV's own OpenCV/libjpeg-turbo writer, decodable by its decoders).
- `IntField`s: label, generator, class_id, source_format, width, height (of the source),
  jpeg_quality (source's), stored_quality (of the stored JPEG, -1 if not JPEG), key (index of the
  sample in the split's sorted source list), index (position in this .beton).
`<split>.paths.json` holds the relative source paths in .beton order (FFCV has no string field).
"""

from __future__ import annotations

import json
import math
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from genimage_fast.atomic import atomic_path, atomic_write_text
from genimage_fast.errors import GenImageError
from genimage_fast.records.formats import (
    META_INT_KEYS,
    RECORD_FORMATS,
    STAGING_DIR,
    RecordFormat,
    RecordSplit,
    chunk_stem,
)
from genimage_fast.records.hashing import sha256_file
from genimage_fast.records.imageio import EXTENSION_KINDS, sniff_kind
from genimage_fast.records.store import StoreSpec
from genimage_fast.records.tarshard import Record, ShardFile, read_index, write_shard

FFCV_INT_FIELDS: tuple[str, ...] = META_INT_KEYS + ("index",)
MIN_PAGE = 1 << 23  # FFCV's default page size (8 MiB); grown for larger samples


def beton_name(split: str) -> str:
    return f"{split}.beton"


def paths_name(split: str) -> str:
    return f"{split}.paths.json"


class _StagedSamples:
    """The staged chunks of one split as an indexable dataset for ffcv's DatasetWriter."""

    def __init__(self, staging: Path, chunks: list[dict[str, Any]], store: StoreSpec) -> None:
        self.store = store
        self.items: list[tuple[Path, str, tuple[int, int]]] = []
        self.metas: list[dict[str, Any]] = []
        for chunk in chunks:
            if not chunk["count"]:
                continue
            path = staging / chunk["name"]
            shard = ShardFile(path)
            for entry in read_index(path.with_suffix(".idx")):
                ext = entry.image_ext
                self.items.append((path, ext, entry.members[ext]))
                self.metas.append(json.loads(shard.read(*entry.members["json"])))
            shard.close()
        self._open: dict[Path, ShardFile] = {}

    def __len__(self) -> int:
        return len(self.items)

    def max_payload(self) -> int:
        return max((size for _, _, (_, size) in self.items), default=0)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        path, ext, (offset, size) = self.items[i]
        if path not in self._open:  # opened lazily in each FFCV writer process
            self._open[path] = ShardFile(path)
        data = self._open[path].read(offset, size)
        meta = self.metas[i]
        array = np.frombuffer(data, dtype=np.uint8)
        image = array.reshape(meta["raw_shape"]) if EXTENSION_KINDS[ext] == "raw" else array
        ints = [meta[k] for k in META_INT_KEYS]
        if self.store.name == "jpeg":
            ints[META_INT_KEYS.index("stored_quality")] = self.store.quality
        return (image, *ints, i)


def ffcv_missing() -> str | None:
    """Why ffcv's writer / reader cannot be used here, or None. A real import, not find_spec: a package
    that is found but fails to import (a missing system library, a broken build) must also be caught
    before a convert does any work, not as a ModuleNotFoundError when it assembles the .beton."""
    try:
        import ffcv.fields  # noqa: F401
        import ffcv.reader  # noqa: F401
        import ffcv.writer  # noqa: F401
    except Exception as err:  # ImportError, or OSError / RuntimeError from a native library
        return f"{type(err).__name__}: {' '.join(str(err).split())}"
    return None


def require_ffcv() -> None:
    """One clear line instead of an ImportError deep inside a convert or a read."""
    why = ffcv_missing()
    if why:
        raise GenImageError(f"ffcv records (--format ffcv) need the ffcv package, which does not import here "
                            f"({why}); install it with pip install -e '.[ffcv]' (see DESIGN §8 for its system "
                            f"libraries)")


def image_field(store: StoreSpec) -> Any:
    """The FFCV field for the image under this store mode (see the module docstring)."""
    from ffcv.fields import BytesField, RGBImageField

    if store.name == "raw":
        return RGBImageField(write_mode="raw")
    if store.name == "jpeg":
        return RGBImageField(write_mode="jpg", jpeg_quality=store.quality)
    return BytesField()


class FfcvSplit(RecordSplit):
    """Reads a .beton through ffcv's Reader (header, metadata, allocation table) and a memory map."""

    @cached_property
    def _reader(self) -> Any:
        require_ffcv()
        from ffcv.reader import Reader

        return Reader(str(self.files[0]))

    @cached_property
    def _map(self) -> np.ndarray:
        return np.memmap(self.files[0], dtype=np.uint8, mode="r")

    @cached_property
    def _sizes(self) -> dict[int, int]:
        table = self._reader.alloc_table
        return dict(zip(table["ptr"].tolist(), table["size"].tolist(), strict=True))

    def _column(self, field: str) -> np.ndarray:
        """One field's metadata column (ffcv names the struct members f0, f1, ... in field order)."""
        metadata = self._reader.metadata
        return metadata[metadata.dtype.names[self._reader.field_names.index(field)]]

    @cached_property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {k: np.asarray(self._column(k), dtype=np.int64) for k in META_INT_KEYS}
        meta["path"] = json.loads((self.root / paths_name(self.name)).read_text())
        return meta

    def read_encoded(self, i: int) -> tuple[str, bytes | np.ndarray]:
        record = self._column("image")[self._check_index(i)]
        names = record.dtype.names or ()
        if "data_ptr" in names:  # RGBImageField: mode 0 = jpg, 1 = raw
            ptr = int(record["data_ptr"])
            data = self._map[ptr:ptr + self._sizes[ptr]]
            if int(record["mode"]) == 1:
                return "raw", np.array(data).reshape(int(record["height"]), int(record["width"]), 3)
            return "jpeg", data.tobytes()
        ptr, size = int(record["ptr"]), int(record["size"])
        data = self._map[ptr:ptr + size].tobytes()
        return sniff_kind(data), data


class FfcvFormat(RecordFormat):
    name = "ffcv"
    split_class = FfcvSplit

    def check_available(self) -> None:
        require_ffcv()

    def staged_store(self, spec: StoreSpec) -> StoreSpec:
        # jpeg:Q is encoded by FFCV's RGBImageField at assembly, so workers stage decoded pixels.
        return StoreSpec("raw") if spec.name == "jpeg" else spec

    def write_chunk(self, out: Path, split: str, chunk: int, records: list[Record]) -> dict[str, Any]:
        staging = out / STAGING_DIR
        staging.mkdir(exist_ok=True)
        path = staging / f"{chunk_stem(split, chunk)}.tar"
        if not records:
            return {"name": path.name, "sha256": None, "count": 0}
        tar_sha, _ = write_shard(path, records)
        return {"name": path.name, "sha256": tar_sha, "count": len(records)}

    def chunk_present(self, out: Path, entry: dict[str, Any]) -> bool:
        return entry["count"] == 0 or (out / STAGING_DIR / entry["name"]).is_file()

    def chunk_files(self, out: Path, entry: dict[str, Any]) -> list[Path]:
        return [] if entry["count"] == 0 else [out / STAGING_DIR / entry["name"],
                                               (out / STAGING_DIR / entry["name"]).with_suffix(".idx")]

    def finalize_split(self, out: Path, split: str, chunks: list[dict[str, Any]], spec: StoreSpec,
                       workers: int) -> dict[str, Any]:
        require_ffcv()
        from ffcv.fields import IntField
        from ffcv.writer import DatasetWriter

        samples = _StagedSamples(out / STAGING_DIR, chunks, spec)
        if not len(samples):
            return {"count": 0, "files": [], "sidecars": []}
        fields = {"image": image_field(spec), **{k: IntField() for k in FFCV_INT_FIELDS}}
        page = max(MIN_PAGE, 1 << math.ceil(math.log2(samples.max_payload() + 4096)))
        final = out / beton_name(split)
        with atomic_path(final) as tmp:
            writer = DatasetWriter(str(tmp), fields, page_size=page, num_workers=max(1, workers))
            writer.from_indexed_dataset(samples, chunksize=64)
        paths = out / paths_name(split)
        atomic_write_text(paths, json.dumps([m["path"] for m in samples.metas]))
        return {
            "count": len(samples),
            "files": [{"name": final.name, "sha256": sha256_file(final), "count": len(samples)}],
            "sidecars": [{"name": paths.name, "sha256": sha256_file(paths)}],
        }

    def cleanup(self, out: Path, split: str, chunks: list[dict[str, Any]]) -> None:
        staging = out / STAGING_DIR
        for chunk in chunks:
            for suffix in (".tar", ".idx"):
                (staging / chunk["name"]).with_suffix(suffix).unlink(missing_ok=True)
        if staging.is_dir() and not any(staging.iterdir()):
            shutil.rmtree(staging)


RECORD_FORMATS.add(FfcvFormat.name, FfcvFormat())
