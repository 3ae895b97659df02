"""JPEG quality estimation: invert libjpeg's quality scaling against the quantisation tables."""

from __future__ import annotations

import numpy as np

from genimage_fast.jpeg_tables import STD_CHROMA_TABLE, STD_LUMA_TABLE

# libjpeg's standard tables (ITU T.81 Annex K), natural (row-major) order.
STD_LUMINANCE = np.array(STD_LUMA_TABLE, dtype=np.int64)
STD_CHROMINANCE = np.array(STD_CHROMA_TABLE, dtype=np.int64)
# DQT stores coefficients in zig-zag order; ZIGZAG[k] is the natural index of the k-th one.
ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
], dtype=np.int64)
QUALITIES = np.arange(1, 101)


def scaled_table(base: np.ndarray, quality: int | np.ndarray) -> np.ndarray:
    """libjpeg's jpeg_quality_scaling + jpeg_add_quant_table (baseline: clamp to 1..255)."""
    q = np.asarray(quality, dtype=np.int64)
    scale = np.where(q < 50, 5000 // np.maximum(q, 1), 200 - 2 * q)
    table = (base[None, :] * np.atleast_1d(scale)[:, None] + 50) // 100
    return np.clip(table, 1, 255)


# Every quality's scaled tables, computed once: [100, 64] each.
_LUMA_BY_Q = scaled_table(STD_LUMINANCE, QUALITIES)
_CHROMA_BY_Q = scaled_table(STD_CHROMINANCE, QUALITIES)


def read_quant_tables(data: bytes) -> dict[int, np.ndarray]:
    """The DQT tables of a JPEG (id -> 64 values in natural order); {} when not a JPEG."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return {}
    tables: dict[int, np.ndarray] = {}
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA or marker == 0xD9:  # start of scan / end: no tables after this
            break
        if marker == 0xDB:
            seg, seg_end = pos + 4, min(pos + 2 + length, end)
            while seg < seg_end:
                precision, table_id = data[seg] >> 4, data[seg] & 0x0F
                width = 2 if precision else 1
                raw = data[seg + 1:seg + 1 + 64 * width]
                if len(raw) < 64 * width:
                    break
                values = np.frombuffer(raw, dtype=">u2" if width == 2 else np.uint8).astype(np.int64)
                natural = np.empty(64, dtype=np.int64)
                natural[ZIGZAG] = values
                tables[table_id] = natural
                seg += 1 + 64 * width
        pos += 2 + length
    return tables


def estimate_jpeg_quality(jpeg_bytes: bytes) -> int:
    """The libjpeg quality (1..100) whose scaled standard tables best match this JPEG's; -1 if not JPEG.

    Exact for files written by libjpeg / libjpeg-turbo / PIL / OpenCV with standard tables; for
    custom tables it is the closest standard quality (smallest summed absolute difference).
    """
    tables = read_quant_tables(jpeg_bytes)
    if 0 not in tables:
        return -1
    error = np.abs(_LUMA_BY_Q - tables[0][None, :]).sum(axis=1)
    if 1 in tables:
        error = error + np.abs(_CHROMA_BY_Q - tables[1][None, :]).sum(axis=1)
    # Ties (only at the 1/255 clamps) go to the highest quality, the libjpeg writer's usual choice.
    best = np.flatnonzero(error == error.min())
    return int(QUALITIES[best[-1]])
