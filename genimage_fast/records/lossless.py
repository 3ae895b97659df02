"""The `lossless` payload codec: decoded pixels, bit-exact, a prediction filter, then zstd.

Why this codec (measured, see benchmarks/RESULTS.md "Lossless codec"): PNG's decode is zlib's
inflate plus a per-pixel unfilter, ~100-350 images/s per core on GenImage-like fakes. zstd's
entropy decoder is several times faster than inflate, and a gradient predictor (prediction
left + up - up-left, residual taken mod 256, after subtracting green from red and blue) makes
the residuals as compressible as PNG's filtered rows: the payload comes out at ~0.8x the PNG's
size, decoding 4-8x faster. Undoing the filter is two running sums (along x, then y) and two adds,
one numba pass (nogil) at several GB/s, so zstd alone bounds the decode. LZ4 decodes ~1.5x faster
but has no entropy coder, so the residuals barely shrink (~1.5x PNG's size); raw pixels are ~2-5x.

Payload = 28-byte header + one zstd frame::

    magic b"GFL1" | version u8 | codec u8 (1 = zstd) | filter u8 (1 = gradient + subtract green)
    | channels u8 (3) | height u32 | width u32 | frame length u64 | crc32 of the 24 bytes before, u32

The zstd frame records its content size and an xxh64 checksum of its content (the residuals, a
bijection of the pixels), which zstd checks while decoding. So a truncated, extended or
bit-flipped payload is always a LosslessError (never garbage pixels): the header CRC covers the
shape, the frame length catches truncation, zstd catches the rest.
"""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass

import numba
import numpy as np

MAGIC = b"GFL1"
VERSION = 1
CODEC_ZSTD = 1
FILTER_GRADIENT_SG = 1  # gradient predictor after subtract-green
ZSTD_LEVEL = 3  # levels 1-3 encode at ~400 MB/s; 5+ cost 3x the encode time for ~5% size
_HEAD = struct.Struct("<4sBBBBIIQ")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + _CRC.size  # 28


class LosslessError(ValueError):
    """A lossless payload that is damaged, truncated or not one at all (the reason in str())."""


@dataclass(frozen=True)
class LosslessHeader:
    height: int
    width: int
    channels: int
    codec: int
    filter: int
    frame_size: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels


def is_lossless(data: bytes | memoryview | np.ndarray) -> bool:
    """Whether a payload starts with the lossless magic."""
    return bytes(data[:4]) == MAGIC


# --- the filter: numpy references (what the numba kernels must equal) -------------------------

def filter_reference(pixels: np.ndarray) -> np.ndarray:
    """Residuals of HWC uint8 pixels: subtract green, then x[y,x] - x[y,x-1] - x[y-1,x] + x[y-1,x-1]
    mod 256 (zero outside the image, so row 0 is a left predictor and column 0 an up predictor)."""
    x = np.array(pixels, dtype=np.uint8, copy=True)
    x[..., 0] -= x[..., 1]
    x[..., 2] -= x[..., 1]
    x[:, 1:] -= x[:, :-1].copy()
    x[1:] -= x[:-1].copy()
    return x


def unfilter_reference(residuals: np.ndarray) -> np.ndarray:
    """Inverse of filter_reference: running sums along y and x (mod 256), then add green back."""
    x = np.cumsum(np.cumsum(residuals, axis=0, dtype=np.uint8), axis=1, dtype=np.uint8)
    x[..., 0] += x[..., 1]
    x[..., 2] += x[..., 1]
    return x


@numba.njit(nogil=True, cache=True)
def _unfilter_kernel(residuals: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - numba
    """unfilter_reference in one pass: a running sum along x per row, a row buffer for the sum along y."""
    height, width = residuals.shape[0], residuals.shape[1]
    above = np.zeros((width, 3), dtype=np.uint8)  # the decorrelated row above
    for y in range(height):
        a0 = np.uint8(0)
        a1 = np.uint8(0)
        a2 = np.uint8(0)
        for x in range(width):
            a0 += residuals[y, x, 0]
            a1 += residuals[y, x, 1]
            a2 += residuals[y, x, 2]
            v0 = np.uint8(above[x, 0] + a0)
            v1 = np.uint8(above[x, 1] + a1)
            v2 = np.uint8(above[x, 2] + a2)
            above[x, 0] = v0
            above[x, 1] = v1
            above[x, 2] = v2
            out[y, x, 0] = v0 + v1
            out[y, x, 1] = v1
            out[y, x, 2] = v2 + v1


def unfilter(residuals: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The numba kernel (releases the GIL): HWC uint8 residuals -> pixels (into `out` if given)."""
    if out is None:
        out = np.empty(residuals.shape, dtype=np.uint8)
    _unfilter_kernel(residuals, out)
    return out


def warm() -> None:
    """Load (or compile) the numba kernel now: a process that forks loader workers then hands them a
    ready kernel instead of each worker loading it again (DataLoader workers restart every epoch)."""
    unfilter(np.zeros((1, 1, 3), dtype=np.uint8))


# --- encode / decode ------------------------------------------------------------------------------

_local = threading.local()  # zstd (de)compressor contexts are not thread-safe: one per thread


def _zstd():
    import zstandard

    if not hasattr(_local, "dctx"):
        _local.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True)
        _local.dctx = zstandard.ZstdDecompressor()
    return _local


def encode_lossless(pixels: np.ndarray) -> bytes:
    """HWC uint8 RGB pixels -> payload (header + zstd frame of the gradient residuals)."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"lossless encodes HWC uint8 RGB images, got {pixels.dtype} {pixels.shape}")
    frame = _zstd().cctx.compress(filter_reference(pixels).tobytes())
    head = _HEAD.pack(MAGIC, VERSION, CODEC_ZSTD, FILTER_GRADIENT_SG, 3, pixels.shape[0], pixels.shape[1],
                      len(frame))
    return head + _CRC.pack(zlib.crc32(head)) + frame


def read_header(data: bytes | memoryview | np.ndarray) -> LosslessHeader:
    """Parse and check the header (magic, version, CRC, codec, sizes); LosslessError otherwise."""
    view = memoryview(data).cast("B") if not isinstance(data, np.ndarray) else memoryview(np.ascontiguousarray(data))
    if len(view) < HEADER_SIZE:
        raise LosslessError(f"truncated lossless payload ({len(view)} bytes, header needs {HEADER_SIZE})")
    head = bytes(view[:_HEAD.size])
    magic, version, codec, filt, channels, height, width, frame = _HEAD.unpack(head)
    if magic != MAGIC:
        raise LosslessError("not a lossless payload (bad magic)")
    if _CRC.unpack(bytes(view[_HEAD.size:HEADER_SIZE]))[0] != zlib.crc32(head):
        raise LosslessError("corrupt lossless header (CRC mismatch)")
    if version != VERSION or codec != CODEC_ZSTD or filt != FILTER_GRADIENT_SG or channels != 3:
        raise LosslessError(f"unsupported lossless payload (version {version}, codec {codec}, filter {filt}, "
                            f"channels {channels})")
    if len(view) != HEADER_SIZE + frame:
        what = "truncated" if len(view) < HEADER_SIZE + frame else "oversized"
        raise LosslessError(f"{what} lossless payload ({len(view)} bytes, header says {HEADER_SIZE + frame})")
    return LosslessHeader(height, width, channels, codec, filt, frame)


def decode_lossless(data: bytes | memoryview | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Payload -> HWC uint8 RGB pixels (bit-exact); LosslessError for any damage. Releases the GIL
    in zstd and in the unfilter kernel, so threads decode in parallel."""
    import zstandard

    header = read_header(data)
    frame = memoryview(data).cast("B") if not isinstance(data, np.ndarray) else np.ascontiguousarray(data)
    expected = header.height * header.width * header.channels
    try:
        # Check the frame's declared size first: zstd would otherwise try to allocate what it says.
        declared = zstandard.frame_content_size(frame[HEADER_SIZE:])
        if declared != expected:
            raise LosslessError(f"corrupt lossless payload: frame holds {declared} bytes, shape {header.shape} "
                                f"needs {expected}")
        residuals = _zstd().dctx.decompress(frame[HEADER_SIZE:], max_output_size=expected)
    except (zstandard.ZstdError, MemoryError) as err:
        raise LosslessError(f"corrupt lossless payload: {err}") from None
    if len(residuals) != expected:
        raise LosslessError(f"corrupt lossless payload: {len(residuals)} pixel bytes for shape {header.shape}")
    return unfilter(np.frombuffer(residuals, dtype=np.uint8).reshape(header.shape), out)
