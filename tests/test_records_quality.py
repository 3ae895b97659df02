"""JPEG quality estimation against encoders that use libjpeg's scaling (PIL, OpenCV)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from genimage_fast.records.quality import estimate_jpeg_quality, read_quant_tables


def _image(mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _pil_jpeg(quality: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    _image(mode).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def test_every_pil_quality_is_recovered_exactly():
    wrong = {q: estimate_jpeg_quality(_pil_jpeg(q)) for q in range(1, 101)}
    assert {q: e for q, e in wrong.items() if e != q} == {}


@pytest.mark.parametrize("mode", ["L", "CMYK"])
@pytest.mark.parametrize("quality", [30, 75, 96])
def test_grayscale_and_cmyk(mode, quality):
    assert estimate_jpeg_quality(_pil_jpeg(quality, mode)) == quality


@pytest.mark.parametrize("quality", [75, 96])
def test_opencv_encoder(quality):
    ok, data = cv2.imencode(".jpg", np.asarray(_image()), [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    assert ok and estimate_jpeg_quality(data.tobytes()) == quality


def test_tables_match_pil_quantization():
    data = _pil_jpeg(80)
    with Image.open(io.BytesIO(data)) as im:
        reference = im.quantization  # PIL's own parse, natural order
    tables = read_quant_tables(data)
    assert sorted(tables) == sorted(reference)
    for tid, table in tables.items():
        assert table.tolist() == list(reference[tid])


def test_not_jpeg_is_minus_one():
    png = io.BytesIO()
    _image().save(png, format="PNG")
    assert estimate_jpeg_quality(png.getvalue()) == -1
    assert estimate_jpeg_quality(b"") == -1
    assert estimate_jpeg_quality(b"\xff\xd8\xff\xd9") == -1  # a JPEG without tables
