"""Record files: convert a GenImage tree into FFCV / DALI records, read, inspect and verify them.

Python API::

    from genimage_fast.records import convert, open_records
    convert("genimage/", "records/", fmt="dali", store="original", workers=8)
    rs = open_records("records/")            # RecordSet: .manifest .format .store .root .splits
    sp = rs.split("train")                   # RecordSplit: len(sp), sp.meta, sp.files
    kind, payload = sp.read_encoded(0)       # "jpeg"|"png"|"lossless" bytes, or "raw" HWC uint8 array
    image = sp.read_image(0)                 # HWC uint8 RGB

On-disk layout of a record folder OUT (both formats)
----------------------------------------------------
- `manifest.json`: DESIGN §4.3 (`format, store, max_side, splits: {split: {count, files: [{name,
  sha256, count}], sidecars: [{name, sha256}]}}, counts, rejects, created, version`) plus `source`
  (absolute SRC), `generators`, `shard_size`, `scan_skipped`, `run_key`, and for match-real
  `quality_distribution`
  ({split: {quality: n}} of the reals). `files` are the record files in sample order; `sidecars`
  are the files beside them (DALI .idx, FFCV .paths.json), also covered by `verify`.
- `rejects.jsonl`: `{"path", "reason"}` per input that could not be read or decoded (empty,
  truncated, bad header, undecodable); files the scan does not take as inputs (hidden, system,
  non-image names) are counted as `scan_skipped` instead.
- `.state/`: done-markers per chunk (resume) and cached match-real qualities; not needed to read.
- Samples of a split are its inputs sorted by relative path, minus rejects. Every sample has a
  `key`: its position in that sorted input list (so keys ascend in record order, with gaps where
  inputs were rejected); the record position is 0..count-1 over the files in manifest order.

Per-sample metadata (both formats): `label` (0 real, 1 fake), `generator` (id, -1 unknown),
`class_id` (-1 unknown), `source_format` (0 JPEG, 1 PNG, 2 other; from magic bytes), `width`,
`height` (of the source), `jpeg_quality` (source's, estimated from its DQT tables; -1 if not JPEG),
`stored_quality` (of the stored JPEG payload; -1 if not JPEG), `key`, `path` (relative source path),
`split`. `RecordSplit.meta` gives the integers as int64 arrays plus `path` as a list.

DALI (`--format dali`): webdataset tar shards `<split>-<NNNNN>.tar`, one per chunk of
`shard_size` inputs (default: ~1 GB of the largest images: 341 for raw 1024², 682 encoded,
5461 raw with --max-side 256), each with `<split>-<NNNNN>.idx` in DALI's wds2idx v1.2 format.
Members per sample: `<key:09d>.jpg|png|raw|lossless` then `<key:09d>.json` (the metadata above; for
`raw` also `raw_shape` [H, W, 3], the payload being the HWC uint8 bytes). Read them with
`fn.readers.webdataset(paths=tars, index_paths=idxs, ext=["jpg;png", "json"])` (or `["raw",
"json"]` for store raw), with the `webdataset` library, or with `tarfile`. Store original mixes
.jpg (reals) and .png (fakes) in one shard; jpeg:Q and match-real fakes are .jpg; store lossless
writes every sample as .lossless (records/lossless.py: a 28-byte header with shape and CRC, then a
checksummed zstd frame of the gradient-filtered pixels; `decode_image("lossless", payload)` or
`records.lossless.decode_lossless` reads it).

FFCV (`--format ffcv`): one `<split>.beton` per split plus `<split>.paths.json` (the relative
paths in .beton order). Fields are listed in `genimage_fast.records.ffcv_format`: `image` is a
`BytesField` of JPEG/PNG bytes for original / match-real (decode by magic bytes) and of lossless
payloads (magic b"GFL1") for lossless, FFCV's
`RGBImageField` (raw or jpg mode) for raw / jpeg:Q; then IntFields label, generator, class_id,
source_format, width, height, jpeg_quality, stored_quality, key, index (position in the .beton).

Resume and `--shard I/N`: the chunks of all splits, counted in order (train's, then val's), are
dealt round-robin: chunk number c goes to slice c % N. Each slice run writes its chunks,
their done-markers and `manifest.shard-I-of-N.json`. When a run finds every chunk done it writes
the final files and `manifest.json` (on a shared folder the last slice does this). Otherwise merge by
copying every slice's OUT (files, `.state/`, FFCV's `.staging/`) into one folder and running the same
convert without `--shard`: all chunks are found done, nothing is reconverted, the manifest appears.
"""

from __future__ import annotations

from genimage_fast.records import dali_format, ffcv_format  # noqa: F401  (fill RECORD_FORMATS)
from genimage_fast.records.convert import convert
from genimage_fast.records.formats import RECORD_FORMATS, RecordFormat, RecordSplit
from genimage_fast.records.imageio import decode_image
from genimage_fast.records.inspect import inspect
from genimage_fast.records.quality import estimate_jpeg_quality
from genimage_fast.records.reader import RecordSet, open_records
from genimage_fast.records.store import STORE_MODES, parse_store
from genimage_fast.records.verify import verify

__all__ = [
    "RECORD_FORMATS", "STORE_MODES", "RecordFormat", "RecordSet", "RecordSplit", "convert", "decode_image",
    "estimate_jpeg_quality", "inspect", "open_records", "parse_store", "verify",
]
