"""Record files of the demo data in every format x store mode, read back by independent readers:
DALI's fn.readers.webdataset (CPU, with our .idx), the webdataset library, tarfile, ffcv's Reader."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from genimage_fast.records import inspect, open_records, verify
from genimage_fast.records.imageio import decode_image

# The hand-made round trips (test_convert.py) cover every store mode in the fast suite; on the demo
# data the non-default modes are heavy (each is a full convert of the tree).
STORES = ["original"] + [pytest.param(s, marks=pytest.mark.heavy) for s in ("raw", "jpeg:90", "match-real")]


@pytest.mark.parametrize("fmt", ["dali", "ffcv"])
@pytest.mark.parametrize("store", STORES)
def test_demo_data_converts(make_records, demo_tree, fmt, store):
    from genimage_fast.sources import scan_tree

    out = make_records(fmt, store)
    rs = open_records(out)
    scan = scan_tree(demo_tree)
    assert sum(len(rs.split(s)) for s in rs.splits) == len(scan.samples) - rs.manifest["rejects"]
    assert verify(out) >= 2
    for split in rs.splits:
        part = rs.split(split)
        for i in (0, len(part) // 2, len(part) - 1):
            image = part.read_image(i)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    counts = rs.manifest["counts"]
    assert len(counts) == 8 and all(row["real"] > 0 and row["fake"] > 0 for row in counts.values())


def test_dali_webdataset_reader_reads_our_shards_with_index(make_records):
    dali = pytest.importorskip("nvidia.dali")  # DALI's own reader (not installed on the GPU box)
    fn, pipeline_def = dali.fn, dali.pipeline_def

    out = make_records("dali", "original")
    part = open_records(out).split("val")
    tars = [str(p) for p in part.files]
    idxs = [str(p.with_suffix(".idx")) for p in part.files]

    @pipeline_def(batch_size=8, num_threads=1, device_id=None)
    def pipe():
        image, meta = fn.readers.webdataset(paths=tars, index_paths=idxs, ext=["jpg;png", "json"],
                                            random_shuffle=False, name="reader")
        return fn.decoders.image(image, device="cpu"), meta

    p = pipe()
    p.build()
    seen = 0
    while seen < len(part):
        images, metas = p.run()
        for j in range(len(images)):
            if seen >= len(part):
                break
            meta = json.loads(bytes(np.asarray(metas[j])).decode())
            assert meta["path"] == part.meta["path"][seen]
            np.testing.assert_array_equal(np.asarray(images[j]), part.read_image(seen))
            seen += 1
    assert seen == len(part)


def test_dali_raw_members_reshape(make_records):
    dali = pytest.importorskip("nvidia.dali")  # DALI's own reader (not installed on the GPU box)
    fn, pipeline_def = dali.fn, dali.pipeline_def

    out = make_records("dali", "raw")
    part = open_records(out).split("val")

    @pipeline_def(batch_size=4, num_threads=1, device_id=None)
    def pipe():
        raw, meta = fn.readers.webdataset(paths=[str(f) for f in part.files],
                                          index_paths=[str(f.with_suffix(".idx")) for f in part.files],
                                          ext=["raw", "json"], random_shuffle=False)
        return raw, meta

    p = pipe()
    p.build()
    raws, metas = p.run()
    for j in range(4):
        meta = json.loads(bytes(np.asarray(metas[j])).decode())
        image = np.asarray(raws[j]).reshape(meta["raw_shape"])
        np.testing.assert_array_equal(image, part.read_image(j))


def test_webdataset_library_and_tarfile(make_records):
    wds = pytest.importorskip("webdataset")  # the dali extra's reader library

    out = make_records("dali", "original")
    part = open_records(out).split("train")
    urls = [str(p) for p in part.files]
    rows = list(wds.WebDataset(urls, shardshuffle=False))
    assert len(rows) == len(part)
    for i, row in enumerate(rows):
        meta = json.loads(row["json"])
        assert meta["path"] == part.meta["path"][i] and meta["key"] == int(row["__key__"])
        kind, payload = part.read_encoded(i)
        assert row["jpg" if kind == "jpeg" else "png"] == payload
    with tarfile.open(part.files[0]) as tar:
        names = tar.getnames()
        first = tar.extractfile(names[0]).read()  # read by name, never extracted to disk
    assert names[0].split(".")[1] in ("jpg", "png") and names[1].endswith(".json")
    np.testing.assert_array_equal(decode_image("png" if names[0].endswith("png") else "jpeg", first),
                                  part.read_image(0))


def test_dali_index_matches_wds2idx(make_records, tmp_path):
    """Our .idx equals what DALI's own wds2idx tool writes for the same shard."""
    import shutil

    if shutil.which("tar") is None:
        pytest.skip("wds2idx needs GNU tar")
    IndexCreator = pytest.importorskip("wds2idx").IndexCreator  # ships with the nvidia-dali wheel

    part = open_records(make_records("dali", "original")).split("val")
    shard = part.files[0]
    with IndexCreator(str(shard), str(tmp_path / "ref.idx"), verbose=False) as creator:
        creator.create_index()
    assert (tmp_path / "ref.idx").read_text() == shard.with_suffix(".idx").read_text()


@pytest.mark.parametrize("store", ["original", pytest.param("raw", marks=pytest.mark.heavy)])
def test_ffcv_reader_sees_our_fields(make_records, store):
    Reader = pytest.importorskip("ffcv.reader").Reader  # ffcv's own reader (not on the GPU box)
    out = make_records("ffcv", store)
    part = open_records(out).split("val")
    reader = Reader(str(part.files[0]))
    assert reader.num_samples == len(part)
    assert reader.field_names[0] == "image" and "label" in reader.field_names
    expected = "BytesField" if store == "original" else "RGBImageField"
    assert type(reader.handlers["image"]).__name__ == expected
    col = reader.metadata[reader.metadata.dtype.names[reader.field_names.index("index")]]
    assert col.tolist() == list(range(len(part)))


def test_inspect_lists_records(make_records):
    result = inspect(make_records("dali", "original"), limit=5)
    assert len(result["records"]) == 5 and result["manifest"]["format"] == "dali"
    keys = {"path", "split", "label", "generator", "class_id", "source_format", "width", "height", "jpeg_quality"}
    assert keys <= set(result["records"][0])
    everything = inspect(make_records("dali", "original"), limit=0)
    assert len(everything["records"]) == sum(s["count"] for s in everything["manifest"]["splits"].values())
