"""Mutation fuzz of convert (issue #15 item 4): real PNG and JPEG files truncated at random offsets,
with random byte flips, damaged headers, zero length, PNG bytes named .JPEG and the reverse, other
formats under image names, garbage, and decompression bombs (headers claiming more pixels than
the limit, both in PIL's warning band and beyond it). Every time: convert finishes (exit 0, no
traceback), records + rejects = inputs, every reject has a reason, the cases whose verdict is
certain get it, and `verify` passes on what was written. Seeded: ~50 cases here, 2,000 heavy."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genimage_fast.cli import main
from genimage_fast.records import open_records, verify
from genimage_fast.records.worker import CONVERT_MAX_IMAGE_PIXELS
from genimage_fast.sources import scan_tree

SDV4 = "stable_diffusion_v_1_4/imagenet_ai_0419_sdv4"


def _photo(rng: np.random.Generator, mode: str = "RGB") -> Image.Image:
    h, w = int(rng.integers(16, 72)), int(rng.integers(16, 72))
    y, x = np.mgrid[0:h, 0:w]
    pixels = (np.stack([x * 3, y * 5, (x + y) * 2], axis=-1) + rng.integers(0, 60, (h, w, 3))) % 256
    return Image.fromarray(pixels.astype(np.uint8)).convert(mode)


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def _png(rng: np.random.Generator) -> bytes:
    return _encode(_photo(rng, str(rng.choice(["RGB", "RGBA", "L", "P"]))), "PNG")


def _jpeg(rng: np.random.Generator) -> bytes:
    mode = str(rng.choice(["RGB", "RGB", "L", "CMYK"]))
    return _encode(_photo(rng, mode), "JPEG", quality=int(rng.integers(30, 100)))


def _png_claiming(width: int, height: int) -> bytes:
    """A valid little PNG whose IHDR (CRC fixed) claims width x height: a decompression bomb's header."""
    data = bytearray(_encode(Image.new("L", (4, 4)), "PNG"))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("RGB", (8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _mutate(rng: np.random.Generator, kind: str) -> tuple[bytes, str, str]:
    """(bytes, 'png'|'jpeg' = the name it gets, expected 'record'|'reject'|'either')."""
    source = str(rng.choice(["png", "jpeg"]))
    data = _png(rng) if source == "png" else _jpeg(rng)
    if kind == "truncate":
        return data[: int(rng.integers(1, len(data)))], source, "either"
    if kind == "flip":
        buf = bytearray(data)
        for pos in rng.integers(0, len(buf), int(rng.integers(1, 24))):
            buf[pos] ^= int(rng.integers(1, 256))
        return bytes(buf), source, "either"
    if kind == "header":
        buf = bytearray(data)
        start = int(rng.integers(0, 24))
        buf[start:start + int(rng.integers(1, 9))] = rng.integers(0, 256, 8).astype(np.uint8).tobytes()
        return bytes(buf[: len(data)]), source, "either"
    if kind == "zero":
        return b"", source, "reject"
    if kind == "garbage":
        return b"\x00" + rng.integers(0, 256, int(rng.integers(1, 4000))).astype(np.uint8).tobytes(), source, "reject"
    if kind == "renamed":  # PNG bytes named .JPEG (ImageNet has one) and JPEG bytes named .png
        return data, ("jpeg" if source == "png" else "png"), "record"
    if kind == "other_format":  # BMP / GIF / WebP under an image name
        fmt = str(rng.choice(["BMP", "GIF", "WEBP"]))
        return _encode(_photo(rng), fmt), source, "record"
    side = int(np.sqrt(CONVERT_MAX_IMAGE_PIXELS))
    if kind == "bomb_warn":  # 1x-2x the limit: PIL only warns; convert must still reject
        w, h = int(side * 1.2), int(side * 1.2)
    else:  # "bomb": far beyond it (what a hostile or damaged header claims)
        w, h = int(rng.integers(3, 8)) * side, int(rng.integers(3, 8)) * side
    return (_png_claiming(w, h), "png", "reject") if source == "png" else (_jpeg_claiming(w, h), "jpeg", "reject")


KINDS = ["truncate", "flip", "header", "zero", "garbage", "renamed", "other_format", "bomb_warn", "bomb"]
WEIGHTS = [0.3, 0.25, 0.15, 0.05, 0.05, 0.06, 0.04, 0.05, 0.05]


def _make_tree(root: Path, seed: int, n: int) -> dict[str, tuple[str, str]]:
    """n mutants (plus every kind at least once) in one generator's train split: relpath -> (kind, expected)."""
    rng = np.random.default_rng(seed)
    kinds = KINDS + list(rng.choice(KINDS, size=max(0, n - len(KINDS)), p=WEIGHTS))
    cases = {}
    for i, kind in enumerate(kinds):
        data, named, expected = _mutate(rng, str(kind))
        rel = (f"{SDV4}/train/ai/{i % 1000:03d}_sdv4_{i:05d}.png" if named == "png"
               else f"{SDV4}/train/nature/n01440764_{i}.JPEG")
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        cases[rel] = (str(kind), expected)
    return cases


def _fuzz_once(tmp_path: Path, seed: int, n: int, workers: int, capsys) -> None:
    tree, out = tmp_path / f"tree{seed}", tmp_path / f"rec{seed}"
    cases = _make_tree(tree, seed, n)
    inputs = len(scan_tree(tree).samples)
    assert inputs == len(cases)
    code = main(["convert", str(tree), str(out), "--format", "dali", "--workers", str(workers), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err + captured.out
    manifest = json.loads((out / "manifest.json").read_text())
    records = manifest["splits"]["train"]["count"]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert records + len(rejects) == inputs == manifest["inputs"]
    assert f"inputs: {inputs} = {records} records + {len(rejects)} rejects" in captured.out
    by_path = {r["path"]: r["reason"] for r in rejects}
    assert len(by_path) == len(rejects) and set(by_path) <= set(cases)
    assert all(isinstance(reason, str) and reason.strip() for reason in by_path.values())
    for rel, (kind, expected) in cases.items():
        if expected == "record":
            assert rel not in by_path, (kind, by_path.get(rel))
        elif expected == "reject":
            assert rel in by_path, kind
        if kind.startswith("bomb"):
            assert "decompression bomb" in by_path[rel], by_path[rel]
    verify(out)
    split = open_records(out).split("train")
    for i in range(len(split)):  # every record that was written decodes
        assert split.read_image(i).ndim == 3


def test_fuzz_50_cases(tmp_path: Path, capsys) -> None:
    _fuzz_once(tmp_path, seed=15, n=50, workers=1, capsys=capsys)


@pytest.mark.heavy
@pytest.mark.parametrize("seed", range(10))
def test_fuzz_2000_cases(tmp_path: Path, capsys, seed: int) -> None:
    _fuzz_once(tmp_path, seed=1000 + seed, n=200, workers=2, capsys=capsys)


def test_strict_turns_a_decoder_failure_into_one_error_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "tree" / SDV4 / "train/ai/001_sdv4_00000.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(_png_claiming(60000, 60000))
    code = main(["convert", str(tmp_path / "tree"), str(tmp_path / "rec"), "--format", "dali", "--strict",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "decompression bomb" in err and "001_sdv4_00000.png" in err


def test_unexpected_decoder_exceptions_become_rejects_with_type_and_message(tmp_path: Path, monkeypatch) -> None:
    """Not only the known types: whatever a decoder raises (here IndexError, struct.error, zlib.error,
    MemoryError from inside PIL's open) is a reject naming the type and message."""
    import genimage_fast.records.worker as worker
    from genimage_fast.records import convert

    errors = iter([IndexError("list index out of range"), struct.error("unpack requires a buffer"),
                   zlib.error("Error -3 while decompressing data"), MemoryError()])
    real = worker.load_source

    def flaky(data: bytes):
        exc = next(errors, None)
        if exc is not None:
            raise exc
        return real(data)

    monkeypatch.setattr(worker, "load_source", flaky)
    rng = np.random.default_rng(0)
    for i in range(5):
        path = tmp_path / "tree" / SDV4 / f"train/ai/001_sdv4_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png(rng))
    manifest = convert(tmp_path / "tree", tmp_path / "rec", fmt="dali", progress=False)
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "rec/rejects.jsonl").read_text().splitlines()]
    assert manifest["splits"]["train"]["count"] == 1 and manifest["rejects"] == 4
    assert reasons == ["decoder error: IndexError: list index out of range",
                       "decoder error: struct.error: unpack requires a buffer",
                       "decoder error: zlib.error: Error -3 while decompressing data", "decoder error: MemoryError"]


def test_match_real_quality_pass_survives_damaged_reals(tmp_path: Path) -> None:
    """--store match-real reads every real's quantisation tables before converting: damaged JPEGs
    must not crash that pre-pass either (they are rejected by the convert itself)."""
    from genimage_fast.records import convert

    tree = tmp_path / "tree"
    cases = _make_tree(tree, seed=3, n=40)
    manifest = convert(tree, tmp_path / "rec", fmt="dali", store="match-real", progress=False)
    assert manifest["splits"]["train"]["count"] + manifest["rejects"] == len(cases)
