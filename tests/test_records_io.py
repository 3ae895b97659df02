"""Validation and decoding of single inputs: bad files are rejected with a reason, odd modes become RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from genimage_fast.records.imageio import (
    FORMAT_JPEG,
    FORMAT_OTHER,
    FORMAT_PNG,
    UnreadableImage,
    decode_image,
    load_source,
    resize_max_side,
)


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def _photo(w: int = 48, h: int = 32) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 5 % 256, y * 7 % 256, (x + y) * 3 % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty file"),
    (b"this is not an image at all", "bad header"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "bad header"),
])
def test_rejects_with_reason(data, reason):
    with pytest.raises(UnreadableImage, match=reason):
        load_source(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_is_rejected(fmt):
    data = _encode(_photo(64, 64), fmt)
    with pytest.raises(UnreadableImage, match="truncated|undecodable"):
        load_source(data[: len(data) // 2])


def test_corrupt_png_crc_is_rejected():
    data = bytearray(_encode(_photo(), "PNG"))
    data[40] ^= 0xFF  # inside IDAT: the CRC no longer matches
    with pytest.raises(UnreadableImage):
        load_source(bytes(data))


@pytest.mark.parametrize("mode", ["CMYK", "L"])
def test_cmyk_and_gray_jpegs_become_rgb(mode):
    data = _encode(_photo().convert(mode), "JPEG", quality=90)
    src = load_source(data)
    with Image.open(io.BytesIO(data)) as ref:
        expected = np.asarray(ref.convert("RGB"))
    assert src.source_format == FORMAT_JPEG and src.jpeg_quality == 90
    assert src.image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(src.image), expected)


def test_format_from_content_not_name():
    png = _encode(_photo(), "PNG")
    assert load_source(png).source_format == FORMAT_PNG  # a PNG named .JPEG is still a PNG
    bmp = _encode(_photo(), "BMP")
    assert load_source(bmp).source_format == FORMAT_OTHER


def test_palette_and_alpha_become_rgb():
    pal = _encode(_photo().convert("P"), "PNG")
    rgba = _encode(_photo().convert("RGBA"), "PNG")
    assert load_source(pal).image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(load_source(rgba).image), np.asarray(_photo()))


def test_resize_max_side_antialiased_and_keeps_small():
    image = _photo(200, 100)
    small = resize_max_side(image, 50)
    assert small.size == (50, 25)
    expected = image.resize((50, 25), Image.Resampling.BILINEAR)  # PIL's filter widens when reducing
    np.testing.assert_array_equal(np.asarray(small), np.asarray(expected))
    assert resize_max_side(image, 300) is image
    assert resize_max_side(image, None) is image


def test_decode_image_matches_pil():
    data = _encode(_photo(), "JPEG", quality=70)
    with Image.open(io.BytesIO(data)) as ref:
        np.testing.assert_array_equal(decode_image("jpeg", data), np.asarray(ref.convert("RGB")))
    raw = np.zeros((4, 5, 3), np.uint8)
    assert decode_image("raw", raw) is not None and decode_image("raw", raw).shape == (4, 5, 3)
    with pytest.raises(ValueError):
        decode_image("raw", np.zeros((4, 5), np.uint8))


def test_convert_without_pyturbojpeg_says_so_once_and_keeps_pils_pixels(monkeypatch, caplog):
    """No silent fallback: without PyTurboJPEG, convert's JPEG decode is PIL's (libjpeg-turbo too, the
    same pixels), and the process says once why the fast decode is off."""
    import logging

    from genimage_fast.records import imageio
    from tests.conftest import hide_modules

    hide_modules(monkeypatch, "turbojpeg")
    imageio._turbojpeg.cache_clear()
    buf = io.BytesIO()
    Image.fromarray(np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)).save(buf, format="JPEG")
    try:
        with caplog.at_level(logging.WARNING, logger="genimage_fast.records.imageio"):
            first = imageio.load_source(buf.getvalue())
            imageio.load_source(buf.getvalue())
        warned = [r for r in caplog.records if "PyTurboJPEG does not load" in r.getMessage()]
        assert len(warned) == 1 and "PIL (same pixels, slower)" in warned[0].getMessage()
        assert np.array_equal(np.asarray(first.image), np.asarray(Image.open(buf).convert("RGB")))
    finally:
        imageio._turbojpeg.cache_clear()  # the next caller re-probes with PyTurboJPEG back
