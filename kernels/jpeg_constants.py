"""libjpeg's constants for the JPEG round trip, shared by the torch reference and the Triton kernel.

Everything here mirrors libjpeg-turbo (jcparam.c, jccolor.c, jdcolor.c, jfdctint.c, jidctint.c,
jcdctmgr.c) so that a simulated round trip lands on the same integers PIL gets from
`Image.save(..., quality=q)` + reopen: bit-exact at every quality 1..100 (tests/test_kernels_jpeg.py).
"""

from __future__ import annotations

import functools

import torch

# Annex K tables, natural order, shared with the records layer's quality estimator.
from genimage_fast.jpeg_tables import STD_CHROMA_TABLE, STD_LUMA_TABLE

# Fixed-point colour conversion (SCALEBITS = 16), FIX(x) = round(x * 2^16) as in jccolor.c/jdcolor.c.
SCALEBITS = 16
ONE_HALF = 1 << (SCALEBITS - 1)
CBCR_OFFSET = 128 << SCALEBITS


def fix(x: float) -> int:
    return int(x * (1 << SCALEBITS) + 0.5)


# Encoder (RGB -> YCbCr): Y, Cb, Cr rows of (R, G, B) weights.
Y_R, Y_G, Y_B = fix(0.29900), fix(0.58700), fix(0.11400)
CB_R, CB_G, CB_B = -fix(0.16874), -fix(0.33126), fix(0.5)
CR_R, CR_G, CR_B = fix(0.5), -fix(0.41869), -fix(0.08131)
# Decoder (YCbCr -> RGB).
R_CR = fix(1.40200)
G_CB = -fix(0.34414)
G_CR = -fix(0.71414)
B_CB = fix(1.77200)

QUALITY_MIN, QUALITY_MAX = 1, 100


def quality_scale(quality: torch.Tensor) -> torch.Tensor:
    """libjpeg's jpeg_quality_scaling: q < 50 -> 5000 // q, else 200 - 2q (int tensor in, int out)."""
    q = quality.clamp(QUALITY_MIN, QUALITY_MAX).to(torch.int32)
    return torch.where(q < 50, 5000 // q, 200 - 2 * q)


@functools.cache
def _base_tables(device: torch.device) -> torch.Tensor:
    return torch.tensor([STD_LUMA_TABLE, STD_CHROMA_TABLE], dtype=torch.int32, device=device)


def base_tables(device: torch.device | str = "cpu") -> torch.Tensor:
    """The two standard tables as int32 [2, 64] (luma, chroma), uploaded once per device (cached:
    a per-call upload from pageable memory would block the host on CUDA). Do not modify in place."""
    return _base_tables(torch.device(device))


def quant_tables(quality: torch.Tensor) -> torch.Tensor:
    """int32 [N, 2, 64]: jpeg_set_quality(q, force_baseline=TRUE) tables for each sample's quality."""
    scale = quality_scale(quality).view(-1, 1, 1)
    table = (base_tables(quality.device) * scale + 50) // 100
    return table.clamp(1, 255)




# ------------------------------------------------------------------------------- integer DCTs (islow)
# libjpeg-turbo's default DCT in both directions is the integer "islow" one (JDCT_ISLOW). Each of
# its 1-D passes is an integer linear map followed by DESCALE(v, n) = (v + 2^(n-1)) >> n, so a
# pass is `(M @ v + 2^(n-1)) >> n` with the integer matrices below (derived by running the
# butterflies of jfdctint.c / jidctint.c on unit vectors; the even terms that libjpeg shifts
# left instead of descaling are exact in this form). Forward: rows with n = 11, then columns with
# n = 15 (coefficients come out scaled by 8). Inverse: columns n = 11, then rows n = 18. The
# IDCT's all-zero-AC shortcuts give the same integers as the full formula.
CONST_BITS, PASS1_BITS = 13, 2
FDCT_SHIFTS = (CONST_BITS - PASS1_BITS, CONST_BITS + PASS1_BITS)  # (rows, columns)
IDCT_SHIFTS = (CONST_BITS - PASS1_BITS, CONST_BITS + PASS1_BITS + 3)  # (columns, rows)


def _fix13(x: float) -> int:
    return int(x * (1 << CONST_BITS) + 0.5)


_C = {name: _fix13(v) for name, v in dict(
    c0298=0.298631336, c0390=0.390180644, c0541=0.541196100, c0765=0.765366865, c0899=0.899976223,
    c1175=1.175875602, c1501=1.501321110, c1847=1.847759065, c1961=1.961570560, c2053=2.053119869,
    c2562=2.562915447, c3072=3.072711026).items()}


def _odd_part(t4: int, t5: int, t6: int, t7: int) -> tuple[int, int, int, int]:
    """The shared odd-part rotation of jfdctint.c / jidctint.c ('figure 8')."""
    c = _C
    z1, z2, z3, z4 = t4 + t7, t5 + t6, t4 + t6, t5 + t7
    z5 = (z3 + z4) * c["c1175"]
    z1, z2 = z1 * -c["c0899"], z2 * -c["c2562"]
    z3, z4 = z3 * -c["c1961"] + z5, z4 * -c["c0390"] + z5
    return t4 * c["c0298"] + z1 + z3, t5 * c["c2053"] + z2 + z4, t6 * c["c3072"] + z2 + z3, t7 * c["c1501"] + z1 + z4


def _fdct_1d(d: list[int]) -> list[int]:
    """jpeg_fdct_islow's pass body before DESCALE (even terms scaled by 2^CONST_BITS)."""
    t0, t7, t1, t6 = d[0] + d[7], d[0] - d[7], d[1] + d[6], d[1] - d[6]
    t2, t5, t3, t4 = d[2] + d[5], d[2] - d[5], d[3] + d[4], d[3] - d[4]
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    z1 = (t12 + t13) * _C["c0541"]
    o7, o5, o3, o1 = _odd_part(t4, t5, t6, t7)
    return [(t10 + t11) << CONST_BITS, o1, z1 + t13 * _C["c0765"], o3, (t10 - t11) << CONST_BITS, o5,
            z1 - t12 * _C["c1847"], o7]


def _idct_1d(c: list[int]) -> list[int]:
    """jpeg_idct_islow's pass body before DESCALE."""
    z1 = (c[2] + c[6]) * _C["c0541"]
    t2, t3 = z1 - c[6] * _C["c1847"], z1 + c[2] * _C["c0765"]
    t0, t1 = (c[0] + c[4]) << CONST_BITS, (c[0] - c[4]) << CONST_BITS
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    o0, o1, o2, o3 = _odd_part(c[7], c[5], c[3], c[1])
    return [t10 + o3, t11 + o2, t12 + o1, t13 + o0, t13 - o0, t12 - o1, t11 - o2, t10 - o3]


def _matrix(pass_fn) -> tuple[tuple[int, ...], ...]:
    cols = [pass_fn([int(i == j) for i in range(8)]) for j in range(8)]
    return tuple(tuple(cols[j][k] for j in range(8)) for k in range(8))


FDCT_MATRIX = _matrix(_fdct_1d)  # out[k] = sum_j FDCT_MATRIX[k][j] * in[j]
IDCT_MATRIX = _matrix(_idct_1d)


@functools.cache
def _islow(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.tensor(m, dtype=dtype, device=device) for m in (FDCT_MATRIX, IDCT_MATRIX))  # type: ignore[return-value]


def islow_matrices(device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.int32) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward, inverse) [8, 8] integer matrices on device, cached per (device, dtype)."""
    return _islow(torch.device(device), dtype)


def range_limit(centred: torch.Tensor) -> torch.Tensor:
    """jidctint.c's output stage: range_limit[v & RANGE_MASK] of the centred sample v (wraps mod
    1024 exactly as libjpeg's table does, then clamps), + CENTERJSAMPLE -> 0..255."""
    return ((((centred + 512) & 1023) - 512) + 128).clamp(0, 255)
