"""`--store lossless`: the codec, its numba kernel vs the numpy reference, damage detection, and
bit-exact round trips against PIL's own decode of every source (demo data and a tree of odd modes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.records import convert, open_records, verify
from genimage_fast.records import lossless as L
from genimage_fast.sources import scan_tree
from tests.conftest import backend_missing

SD = "stable_diffusion_v_1_4/imagenet_ai_0419_sdv4"


def pil_rgb(path: Path) -> np.ndarray:
    """The reference: what torchvision's pil_loader hands a detector."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _images(rng: np.random.Generator) -> list[np.ndarray]:
    smooth = np.cumsum(rng.integers(-3, 4, (37, 53, 3)), axis=1).astype(np.uint8)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((1, 1, 3), (2, 7, 3), (19, 5, 3))] + \
        [smooth, np.zeros((4, 4, 3), np.uint8), np.full((3, 9, 3), 255, np.uint8)]


def test_filter_is_the_documented_gradient_predictor():
    """Independent formula in int arithmetic: subtract green, then x - left - up + upleft mod 256."""
    img = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    d = img.astype(np.int64)
    d[..., 0] -= d[..., 1]
    d[..., 2] -= d[..., 1]
    p = np.pad(d, ((1, 0), (1, 0), (0, 0)))  # zero above and left of the image
    expected = (p[1:, 1:] - p[1:, :-1] - p[:-1, 1:] + p[:-1, :-1]) % 256
    assert np.array_equal(L.filter_reference(img), expected.astype(np.uint8))


def test_numba_unfilter_equals_numpy_reference():
    for img in _images(np.random.default_rng(0)):
        residuals = L.filter_reference(img)
        reference = L.unfilter_reference(residuals)
        assert np.array_equal(reference, img)
        assert np.array_equal(L.unfilter(residuals), reference)
        out = np.empty_like(img)
        assert L.unfilter(residuals, out) is out and np.array_equal(out, img)


def test_codec_round_trip_from_bytes_and_memory_maps():
    for img in _images(np.random.default_rng(2)):
        payload = L.encode_lossless(img)
        assert L.is_lossless(payload) and L.read_header(payload).shape == img.shape
        assert np.array_equal(L.decode_lossless(payload), img)
        assert np.array_equal(L.decode_lossless(np.frombuffer(payload, np.uint8)), img)  # memmap slices
        assert np.array_equal(L.decode_lossless(memoryview(payload)), img)
    with pytest.raises(ValueError, match="HWC uint8"):
        L.encode_lossless(np.zeros((4, 4), np.uint8))


def test_every_truncation_and_bit_flip_is_an_error_never_pixels():
    img = np.cumsum(np.random.default_rng(3).integers(0, 9, (12, 10, 3)), axis=0).astype(np.uint8)
    payload = L.encode_lossless(img)
    for n in range(len(payload)):
        with pytest.raises(L.LosslessError):
            L.decode_lossless(payload[:n])
    with pytest.raises(L.LosslessError, match="oversized"):
        L.decode_lossless(payload + b"\0")
    harmless = 0
    for i in range(len(payload)):
        for bit in (0, 4, 7):
            damaged = bytearray(payload)
            damaged[i] ^= 1 << bit
            try:
                pixels = L.decode_lossless(bytes(damaged))
            except L.LosslessError:
                continue
            # zstd's frame header has a reserved bit decoders must ignore: the pixels are then intact
            assert np.array_equal(pixels, img), f"byte {i} bit {bit} decoded to different pixels"
            harmless += 1
    assert harmless <= 1


# --- a tree of every source mode the detectors' PIL loaders meet ----------------------------------

def _save(path: Path, image: Image.Image, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kw)


def _modes_tree(root: Path) -> Path:
    rng = np.random.default_rng(7)

    def rgb(h: int, w: int) -> np.ndarray:
        base = np.cumsum(rng.integers(-6, 7, (h, w, 3)), axis=1) + 128
        return np.clip(base, 0, 255).astype(np.uint8)

    for split, base in (("train", 0), ("val", 50)):
        ai, nature = root / SD / split / "ai", root / SD / split / "nature"
        fake = [
            Image.fromarray(rgb(33, 17)),                                           # RGB, odd size
            Image.fromarray(rgb(40, 30)).quantize(colors=37),                       # palette
            Image.fromarray(rgb(25, 31)).convert("L"),                              # grayscale
            Image.fromarray((rng.integers(0, 1200, (20, 22))).astype(np.uint16)),   # 16-bit grey (> 255 clips)
            Image.fromarray(np.dstack([rgb(19, 23), rng.integers(0, 256, (19, 23), np.uint8)])),  # RGBA
            Image.fromarray(rgb(1, 1)),                                             # 1x1
        ]
        for i, image in enumerate(fake):
            _save(ai / f"062_sdv4_{base + i:05d}.png", image)
        palette = fake[1].copy()
        palette.info["transparency"] = 3
        _save(ai / f"062_sdv4_{base + 10:05d}.png", palette, transparency=3)  # palette + tRNS
        rgb16 = rgb(13, 21).astype(np.uint16) * 257 + rng.integers(0, 257, (13, 21, 3)).astype(np.uint16)
        import cv2

        (ai / f"062_sdv4_{base + 11:05d}.png").write_bytes(cv2.imencode(".png", rgb16)[1].tobytes())  # 16-bit RGB
        real = [
            (Image.fromarray(rgb(45, 37)), {"quality": 90}),                        # 4:2:0, odd size
            (Image.fromarray(rgb(29, 31)).convert("L"), {"quality": 80}),           # grey JPEG
            (Image.fromarray(rgb(30, 22)).convert("CMYK"), {"quality": 85}),        # CMYK JPEG
            (Image.fromarray(rgb(17, 40)), {"quality": 75, "progressive": True}),   # progressive
            (Image.fromarray(rgb(31, 9)), {"quality": 95, "subsampling": 0}),       # 4:4:4
        ]
        for i, (image, kw) in enumerate(real):
            name = f"n01440764_{base + i}.JPEG" if split == "train" else f"ILSVRC2012_val_{base + i:08d}.JPEG"
            _save(nature / name, image, format="JPEG", **kw)
    return root


@pytest.fixture(scope="module")
def modes_tree(tmp_path_factory) -> Path:
    return _modes_tree(tmp_path_factory.mktemp("modes") / "genimage")


class ConvertedOnDemand(dict):
    """{key: record folder}, each converted from `tree` when first asked for; an ffcv one skips the test
    where ffcv is missing (the GPU box), so the dali cases never depend on it."""

    def __init__(self, factory, tree: Path, **fixed) -> None:
        super().__init__()
        self.factory, self.tree, self.fixed = factory, tree, fixed

    def __missing__(self, key):
        fmt, store = key if isinstance(key, tuple) else (key, self.fixed.get("store", "original"))
        if fmt == "ffcv" and backend_missing("ffcv"):
            pytest.skip(f"ffcv records: {backend_missing('ffcv')}")
        out = self.factory.mktemp(f"modes_{fmt}_{store}")
        convert(self.tree, out, fmt=fmt, store=store, progress=False)
        self[key] = out
        return out


@pytest.fixture(scope="module")
def modes_records(tmp_path_factory, modes_tree):
    return ConvertedOnDemand(tmp_path_factory, modes_tree)


def _check_round_trip(records: Path, tree: Path) -> int:
    rs = open_records(records)
    checked = 0
    for split in rs.splits:
        part = rs.split(split)
        for i, rel in enumerate(part.meta["path"]):
            kind, _ = part.read_encoded(i)
            assert kind == "lossless"
            assert np.array_equal(part.read_image(i), pil_rgb(tree / rel)), rel
            checked += 1
    return checked


@pytest.mark.parametrize("fmt", ["dali", "ffcv"])
def test_modes_tree_round_trips_bit_exact(fmt, modes_records, modes_tree):
    assert open_records(modes_records[fmt, "lossless"]).manifest["rejects"] == 0
    assert _check_round_trip(modes_records[fmt, "lossless"], modes_tree) == len(scan_tree(modes_tree).samples)


@pytest.mark.parametrize("fmt", ["dali", "ffcv"])
def test_demo_data_round_trips_bit_exact(fmt, make_records, demo_tree):
    assert _check_round_trip(make_records(fmt, "lossless"), demo_tree) == len(scan_tree(demo_tree).samples)


def test_lossless_is_smaller_than_raw_and_names_its_kind(make_records):
    lossless = open_records(make_records("dali", "lossless"))
    tars = lossless.split("train").files
    total = sum(p.stat().st_size for p in tars)
    raw = sum(int(w) * int(h) * 3 for w, h in zip(lossless.split("train").meta["width"],
                                                   lossless.split("train").meta["height"], strict=True))
    assert total < 0.8 * raw
    assert lossless.manifest["store"] == "lossless"


def _damage(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_damaged_record_caught_by_verify_and_by_decode(tmp_path, modes_tree):
    out = tmp_path / "rec"
    convert(modes_tree, out, fmt="dali", store="lossless", progress=False)
    part = open_records(out).split("train")
    shard = part.files[0]
    from genimage_fast.records.tarshard import read_index

    entry = read_index(shard.with_suffix(".idx"))[2]
    offset, size = entry.members["lossless"]
    _damage(shard, offset + size // 2)  # a bit inside sample 2's zstd frame
    with pytest.raises(GenImageError, match="does not match its sha256"):
        verify(out)
    fresh = open_records(out).split("train")
    assert np.array_equal(fresh.read_image(1), pil_rgb(modes_tree / fresh.meta["path"][1]))  # others intact
    with pytest.raises(GenImageError, match=rf"{shard.name}: sample 2 of split 'train': corrupt lossless payload"):
        fresh.read_image(2)


def test_truncated_shard_is_one_clear_error(tmp_path, modes_tree):
    out = tmp_path / "rec"
    convert(modes_tree, out, fmt="dali", store="lossless", progress=False)
    part = open_records(out).split("val")
    shard = part.files[0]
    from genimage_fast.records.tarshard import read_index

    last = read_index(shard.with_suffix(".idx"))[-1]
    offset, size = last.members["lossless"]
    shard.write_bytes(shard.read_bytes()[:offset + size - 5])  # cut inside the last sample
    with pytest.raises(GenImageError, match="does not match its sha256"):
        verify(out)
    with pytest.raises(GenImageError, match=rf"{shard.name}: sample {len(part) - 1} of split 'val': truncated"):
        open_records(out).split("val").read_image(len(part) - 1)


def test_rejects_arguments():
    from genimage_fast.records import parse_store

    assert str(parse_store("lossless")) == "lossless"
    with pytest.raises(GenImageError, match="takes no argument"):
        parse_store("lossless:3")


def test_bench_convert_lossless_beside_original(modes_tree, tmp_path, capsys):
    from genimage_fast.bench.convert import bench_convert_command

    out = tmp_path / "bench.json"
    assert bench_convert_command(str(modes_tree), store="original,lossless", workers=1, limit=6,
                                 json_path=str(out)) == 0
    doc = json.loads(out.read_text())
    names = [r["name"] for r in doc["results"]]
    assert names == ["convert/plain-pil-loop original", "convert/dali original workers=1",
                     "convert/plain-pil-loop lossless", "convert/dali lossless workers=1"]
    assert all(r["images"] == 6 for r in doc["results"])
    assert "convert/dali lossless workers=1: " in capsys.readouterr().out
