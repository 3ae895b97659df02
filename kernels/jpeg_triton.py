"""Fused Triton kernel for the JPEG round trip (same maths as `jpeg_reference`, one launch per batch).

One program owns a TILE x TILE block of output pixels (whole MCUs) of one image. It reads the
pixels it needs (luma for the tile; chroma for the tile plus a one-block ring, because fancy
upsampling looks one chroma sample past each edge), runs colour conversion, 2x2 chroma averaging,
libjpeg-turbo's integer islow DCT (each 1-D pass an int32 multiply-reduce with the integer
matrices of jpeg_constants and libjpeg's DESCALE rounding), quantisation by exact integer
division `(|t| + 4q) // 8q` (no float quotient, so no tie can round differently from the
reference or libjpeg), the islow IDCT and its range limit, triangle upsampling (two small
matmuls with 3/1 weights on integers < 2048, exact) and YCbCr->RGB, and writes the tile once.
Per-sample quality comes from a tensor (clamped to 1..100 in the kernel); quality 0 copies the
sample through. Batches above the grid's z limit are launched in chunks.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from genimage_fast.kernels import jpeg_constants as K
from genimage_fast.kernels.runtime import batch_chunks, device_guard, interpreting, next_pow2

# Launch defaults. To be chosen on a GPU by gpu-check's sweep (TILE {16, 32} x warps {4, 8},
# `make gpu-check`, stage jpeg_sweep); the values here are the pre-measurement guess.
DEFAULT_TILE = 32
DEFAULT_WARPS = 4

# libjpeg's fixed-point colour constants as compile-time values for the kernel.
_Y_R, _Y_G, _Y_B = tl.constexpr(K.Y_R), tl.constexpr(K.Y_G), tl.constexpr(K.Y_B)
_CB_R, _CB_G, _CB_B = tl.constexpr(K.CB_R), tl.constexpr(K.CB_G), tl.constexpr(K.CB_B)
_CR_R, _CR_G, _CR_B = tl.constexpr(K.CR_R), tl.constexpr(K.CR_G), tl.constexpr(K.CR_B)
_R_CR, _G_CB, _G_CR, _B_CB = (tl.constexpr(K.R_CR), tl.constexpr(K.G_CB), tl.constexpr(K.G_CR),
                              tl.constexpr(K.B_CB))
_HALF = tl.constexpr(K.ONE_HALF)
# The upsampling matmuls: operands are integers < 2048 and sums < 2^24, exact in 3xTF32.
DOT_PRECISION = tl.constexpr("tf32x3")
_CHROMA_ROUND = tl.constexpr(K.CBCR_OFFSET + K.ONE_HALF - 1)
_FDCT_ROWS, _FDCT_COLS = tl.constexpr(K.FDCT_SHIFTS[0]), tl.constexpr(K.FDCT_SHIFTS[1])
_IDCT_COLS, _IDCT_ROWS = tl.constexpr(K.IDCT_SHIFTS[0]), tl.constexpr(K.IDCT_SHIFTS[1])


@triton.jit
def _matrix8(ptr):
    """An int32 [8, 8] matrix stored row-major at ptr."""
    return tl.load(ptr + tl.arange(0, 8)[:, None] * 8 + tl.arange(0, 8)[None, :])


@triton.jit
def _descale(acc, SHIFT: tl.constexpr):
    """libjpeg's DESCALE, (acc + 2^(SHIFT-1)) >> SHIFT, written without the constant (same integers)."""
    return ((acc >> (SHIFT - 1)) + 1) >> 1


@triton.jit
def _along_w(x, m, SHIFT: tl.constexpr, SIZE: tl.constexpr):
    """Each 8-sample run of each row: out[r, 8b+k] = (sum_j m[k, j] x[r, 8b+j] + 2^(SHIFT-1)) >> SHIFT."""
    x3 = tl.reshape(x, (SIZE, SIZE // 8, 8))
    acc = tl.sum(x3[:, :, None, :] * m[None, None, :, :], axis=3)
    return tl.reshape(_descale(acc, SHIFT), (SIZE, SIZE))


@triton.jit
def _along_h(x, m, SHIFT: tl.constexpr, SIZE: tl.constexpr):
    """The same down each 8-sample run of each column."""
    x3 = tl.reshape(x, (SIZE // 8, 8, SIZE))
    acc = tl.sum(m[None, :, :, None] * x3[:, None, :, :], axis=2)
    return tl.reshape(_descale(acc, SHIFT), (SIZE, SIZE))


@triton.jit
def _round_trip_blocks(samples, table_ptr, scale, mat_ptr, SIZE: tl.constexpr):
    """int32 samples -> islow FDCT, quantise, dequantise, islow IDCT, range limit (0..255), int32."""
    fdct = _matrix8(mat_ptr)
    idct = _matrix8(mat_ptr + 64)
    i = tl.arange(0, SIZE)[:, None]
    k = tl.arange(0, SIZE)[None, :]
    base = tl.load(table_ptr + (i % 8) * 8 + k % 8)
    q = tl.minimum(tl.maximum((base * scale + 50) // 100, 1), 255)
    # int32 cannot overflow: with the matrices' row sums (<= 65536), |sums| < 2.7e8 forward and
    # < 2.1e9 inverse for any input (dequantised coefficients are <= 1152 in magnitude).
    coef = _along_h(_along_w(samples - 128, fdct, _FDCT_ROWS, SIZE), fdct, _FDCT_COLS, SIZE)  # x8 scaled
    level = (tl.abs(coef) + 4 * q) // (8 * q)  # jcdctmgr.c's quantize, exact integer division
    level = tl.where(coef < 0, -level, level)
    pix = _along_w(_along_h(level * q, idct, _IDCT_COLS, SIZE), idct, _IDCT_ROWS, SIZE)
    return tl.minimum(tl.maximum((((pix + 512) & 1023) - 512) + 128, 0), 255)  # range_limit[v & 1023]


@triton.jit
def _chroma_tile(x_ptr, rows, cols, H, W, HW):
    """Downsampled (Cb, Cr) at chroma positions rows[:, None], cols[None, :] (libjpeg padding rules)."""
    sum_cb = tl.zeros((rows.shape[0], cols.shape[0]), dtype=tl.int32)
    sum_cr = tl.zeros((rows.shape[0], cols.shape[0]), dtype=tl.int32)
    for dy in tl.static_range(2):
        r = tl.minimum(tl.maximum(2 * rows + dy, 0), H - 1)
        for dx in tl.static_range(2):
            c = tl.minimum(tl.maximum(2 * cols + dx, 0), W - 1)
            offs = r[:, None] * W + c[None, :]
            red = tl.load(x_ptr + offs).to(tl.int32)
            green = tl.load(x_ptr + HW + offs).to(tl.int32)
            blue = tl.load(x_ptr + 2 * HW + offs).to(tl.int32)
            sum_cb += (_CB_R * red + _CB_G * green + _CB_B * blue + _CHROMA_ROUND) >> 16
            sum_cr += (_CR_R * red + _CR_G * green + _CR_B * blue + _CHROMA_ROUND) >> 16
    bias = tl.where(cols % 2 == 0, 1, 2)[None, :]
    return (sum_cb + bias) >> 2, (sum_cr + bias) >> 2


@triton.jit
def _upsample_matrix(out_idx, chroma_start, n_real, CT: tl.constexpr, ROWS: tl.constexpr):
    """h2v2 fancy weights: 3 x nearer + 1 x farther chroma sample (clamped to the real samples).

    ROWS=True gives [TILE, CT] (left-multiply), else [CT, TILE] (right-multiply)."""
    near = tl.minimum(out_idx // 2, n_real - 1)
    far = tl.where(out_idx % 2 == 0, near - 1, near + 1)
    far = tl.minimum(tl.maximum(far, 0), n_real - 1)
    near = near - chroma_start
    far = far - chroma_start
    src = tl.arange(0, CT)
    if ROWS:
        w = 3 * (src[None, :] == near[:, None]).to(tl.float32) + (src[None, :] == far[:, None]).to(tl.float32)
    else:
        w = 3 * (src[:, None] == near[None, :]).to(tl.float32) + (src[:, None] == far[None, :]).to(tl.float32)
    return w


@triton.jit
def _upsample(c, up_rows, up_cols, bias):
    """(3*near + far) vertically, then horizontally, + 8/7, >> 4 (jdsample.c h2v2_fancy_upsample)."""
    colsum = tl.dot(up_rows, c, input_precision=DOT_PRECISION)
    total = tl.dot(colsum, up_cols, input_precision=DOT_PRECISION) + bias
    return tl.floor(total * 0.0625).to(tl.int32)  # / 16, exact (a power of two)


@triton.jit
def jpeg_round_trip_kernel(x_ptr, out_ptr, quality_ptr, table_ptr, mat_ptr, H, W,
                           TILE: tl.constexpr, CT: tl.constexpr):
    pid_w = tl.program_id(0)
    pid_h = tl.program_id(1)
    n = tl.program_id(2).to(tl.int64)
    HW = H * W
    x_ptr += n * 3 * HW
    out_ptr += n * 3 * HW
    quality = tl.load(quality_ptr + n)
    qc = tl.minimum(tl.maximum(quality, 1), 100)
    scale = tl.where(qc < 50, 5000 // qc, 200 - 2 * qc)

    y0 = pid_h * TILE
    x0 = pid_w * TILE
    rows = y0 + tl.arange(0, TILE)
    cols = x0 + tl.arange(0, TILE)
    mask = (rows < H)[:, None] & (cols < W)[None, :]
    out_offs = rows[:, None] * W + cols[None, :]
    if quality <= 0:  # pass the sample through (CNNSpot's coin said no)
        for ch in tl.static_range(3):
            tl.store(out_ptr + ch * HW + out_offs, tl.load(x_ptr + ch * HW + out_offs, mask=mask), mask=mask)
    else:
        _round_trip_tile(x_ptr, out_ptr, table_ptr, mat_ptr, H, W, HW, scale, y0, x0, rows, cols, mask, out_offs, CT)


@triton.jit
def _round_trip_tile(x_ptr, out_ptr, table_ptr, mat_ptr, H, W, HW, scale, y0, x0, rows, cols, mask, out_offs,
                     CT: tl.constexpr):
    # Luma of the tile, edge-replicated past the image (whole MCUs).
    offs = tl.minimum(rows, H - 1)[:, None] * W + tl.minimum(cols, W - 1)[None, :]
    red = tl.load(x_ptr + offs).to(tl.int32)
    green = tl.load(x_ptr + HW + offs).to(tl.int32)
    blue = tl.load(x_ptr + 2 * HW + offs).to(tl.int32)
    luma = (_Y_R * red + _Y_G * green + _Y_B * blue + _HALF) >> 16
    luma = _round_trip_blocks(luma, table_ptr, scale, mat_ptr, rows.shape[0])

    # Chroma of the tile plus a one-block ring (CT >= TILE/2 + 16 samples each way).
    hc = (H + 1) // 2
    wc = (W + 1) // 2
    cy0 = y0 // 2 - 8
    cx0 = x0 // 2 - 8
    crows = tl.minimum(cy0 + tl.arange(0, CT), hc - 1)  # libjpeg repeats the last chroma row
    ccols = cx0 + tl.arange(0, CT)
    cb, cr = _chroma_tile(x_ptr, crows, ccols, H, W, HW)
    cb = _round_trip_blocks(cb, table_ptr + 64, scale, mat_ptr, CT).to(tl.float32)
    cr = _round_trip_blocks(cr, table_ptr + 64, scale, mat_ptr, CT).to(tl.float32)

    up_rows = _upsample_matrix(rows, cy0, hc, CT, True)
    up_cols = _upsample_matrix(cols, cx0, wc, CT, False)
    bias = tl.where(cols % 2 == 0, 8.0, 7.0)[None, :]
    cb = _upsample(cb, up_rows, up_cols, bias) - 128
    cr = _upsample(cr, up_rows, up_cols, bias) - 128

    r_out = luma + ((_R_CR * cr + _HALF) >> 16)
    g_out = luma + ((_G_CB * cb + _HALF + _G_CR * cr) >> 16)
    b_out = luma + ((_B_CB * cb + _HALF) >> 16)
    tl.store(out_ptr + out_offs, tl.minimum(tl.maximum(r_out, 0), 255).to(tl.uint8), mask=mask)
    tl.store(out_ptr + HW + out_offs, tl.minimum(tl.maximum(g_out, 0), 255).to(tl.uint8), mask=mask)
    tl.store(out_ptr + 2 * HW + out_offs, tl.minimum(tl.maximum(b_out, 0), 255).to(tl.uint8), mask=mask)


@functools.cache
def _islow_flat(device: torch.device) -> torch.Tensor:
    """int32 [128]: the forward then the inverse islow matrix, uploaded once per device."""
    fdct, idct = K.islow_matrices(device, torch.int32)
    return torch.cat([fdct.reshape(-1), idct.reshape(-1)]).contiguous()


def launch_plan(n: int, h: int, w: int, tile: int) -> list[tuple[int, int, tuple[int, int, int]]]:
    """[(first sample, last + 1, grid)] per launch: tiles across x / y, samples on z in chunks
    that fit CUDA's grid-z limit (65,535)."""
    tiles = (triton.cdiv(w, tile), triton.cdiv(h, tile))
    return [(a, b, (*tiles, b - a)) for a, b in batch_chunks(n)]


def jpeg_round_trip_triton(x: torch.Tensor, quality: torch.Tensor, tile: int | None = None,
                           num_warps: int | None = None) -> torch.Tensor:
    """uint8 [N,3,H,W] -> uint8 [N,3,H,W]; quality int [N] on x's device (0 = copy the sample).

    tile: output pixels per program side (power of two, >= 16); default DEFAULT_TILE on a GPU and
    the whole padded image under the interpreter, where fewer, larger programs run much faster.
    num_warps: warps per program (default DEFAULT_WARPS). Launches on x's device, no host sync."""
    n, channels, h, w = x.shape
    if channels != 3:
        raise ValueError(f"expected 3 channels, got {channels}")
    x = x.contiguous()
    out = torch.empty_like(x)
    if n == 0:
        return out
    if tile is None:
        tile = next_pow2(max(h, w, 16)) if interpreting() else DEFAULT_TILE
    if tile < 16 or tile & (tile - 1):
        raise ValueError(f"tile must be a power of two >= 16, got {tile}")
    warps = DEFAULT_WARPS if num_warps is None else num_warps
    if warps < 1 or warps & (warps - 1):
        raise ValueError(f"num_warps must be a power of two, got {num_warps}")
    ct = next_pow2(tile // 2 + 16)
    quality = quality.to(device=x.device, dtype=torch.int32).contiguous()
    tables = K.base_tables(x.device)
    mats = _islow_flat(x.device)
    with device_guard(x.device):
        for a, b, grid in launch_plan(n, h, w, tile):
            jpeg_round_trip_kernel[grid](x[a:b], out[a:b], quality[a:b], tables, mats, h, w, TILE=tile, CT=ct,
                                         num_warps=warps)
    return out
