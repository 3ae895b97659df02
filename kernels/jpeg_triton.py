"""Fused Triton kernel for the JPEG round trip (same maths as `jpeg_reference`, one launch per batch).

One program owns a TILE x TILE block of output pixels (whole MCUs) of one image. It reads the
pixels it needs (luma for the tile; chroma for the tile plus a one-block ring, because fancy
upsampling looks one chroma sample past each edge), runs colour conversion, 2x2 chroma averaging,
8x8 DCTs as block-diagonal matmuls (tensor cores, 3xTF32), quantisation, IDCT, triangle
upsampling (two small matmuls with 3/1 weights, exact) and YCbCr->RGB, and writes the tile once.
Per-sample quality comes from a tensor; quality 0 copies the sample through.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from genimage_fast.kernels import jpeg_constants as K
from genimage_fast.kernels.dct import dct_matrix
from genimage_fast.kernels.runtime import interpreting, next_pow2

# libjpeg's fixed-point colour constants as compile-time values for the kernel.
_Y_R, _Y_G, _Y_B = tl.constexpr(K.Y_R), tl.constexpr(K.Y_G), tl.constexpr(K.Y_B)
_CB_R, _CB_G, _CB_B = tl.constexpr(K.CB_R), tl.constexpr(K.CB_G), tl.constexpr(K.CB_B)
_CR_R, _CR_G, _CR_B = tl.constexpr(K.CR_R), tl.constexpr(K.CR_G), tl.constexpr(K.CR_B)
_R_CR, _G_CB, _G_CR, _B_CB = (tl.constexpr(K.R_CR), tl.constexpr(K.G_CB), tl.constexpr(K.G_CR),
                              tl.constexpr(K.B_CB))
_HALF = tl.constexpr(K.ONE_HALF)
# 3xTF32: tensor-core matmuls with fp32-level accuracy (plain "ieee" FMA dots spill ~3x more
# registers at TILE=32 on sm_90). The upsampling operands are integers < 2048, exact in any mode.
DOT_PRECISION = tl.constexpr("tf32x3")
_CHROMA_ROUND = tl.constexpr(K.CBCR_OFFSET + K.ONE_HALF - 1)


@triton.jit
def _blockdiag(dct_ptr, SIZE: tl.constexpr, TRANSPOSE: tl.constexpr):
    """[SIZE, SIZE] block-diagonal matrix of 8x8 DCT blocks (or of their transposes)."""
    i = tl.arange(0, SIZE)[:, None]
    k = tl.arange(0, SIZE)[None, :]
    if TRANSPOSE:
        offs = (k % 8) * 8 + i % 8
    else:
        offs = (i % 8) * 8 + k % 8
    values = tl.load(dct_ptr + offs)
    return tl.where(i // 8 == k // 8, values, 0.0)


@triton.jit
def _round_trip_blocks(samples, table_ptr, scale, dct_ptr, SIZE: tl.constexpr):
    """Level shift, DCT, quantise (half away from zero), dequantise, IDCT, round, clamp 0..255."""
    d = _blockdiag(dct_ptr, SIZE, False)
    dt = _blockdiag(dct_ptr, SIZE, True)
    i = tl.arange(0, SIZE)[:, None]
    k = tl.arange(0, SIZE)[None, :]
    base = tl.load(table_ptr + (i % 8) * 8 + k % 8)
    q = tl.minimum(tl.maximum((base * scale + 50) // 100, 1), 255).to(tl.float32)
    x = samples.to(tl.float32) - 128.0
    coef = tl.dot(tl.dot(d, x, input_precision=DOT_PRECISION), dt, input_precision=DOT_PRECISION) / q
    coef = tl.where(coef >= 0, tl.floor(coef + 0.5), -tl.floor(0.5 - coef))
    pix = tl.dot(tl.dot(dt, coef * q, input_precision=DOT_PRECISION), d, input_precision=DOT_PRECISION) + 128.0
    return tl.minimum(tl.maximum(tl.floor(pix + 0.5), 0.0), 255.0)


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
    return tl.floor(total / 16.0).to(tl.int32)


@triton.jit
def jpeg_round_trip_kernel(x_ptr, out_ptr, quality_ptr, table_ptr, dct_ptr, H, W,
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
        _round_trip_tile(x_ptr, out_ptr, table_ptr, dct_ptr, H, W, HW, scale, y0, x0, rows, cols, mask, out_offs, CT)


@triton.jit
def _round_trip_tile(x_ptr, out_ptr, table_ptr, dct_ptr, H, W, HW, scale, y0, x0, rows, cols, mask, out_offs,
                     CT: tl.constexpr):
    # Luma of the tile, edge-replicated past the image (whole MCUs).
    offs = tl.minimum(rows, H - 1)[:, None] * W + tl.minimum(cols, W - 1)[None, :]
    red = tl.load(x_ptr + offs).to(tl.int32)
    green = tl.load(x_ptr + HW + offs).to(tl.int32)
    blue = tl.load(x_ptr + 2 * HW + offs).to(tl.int32)
    luma = (_Y_R * red + _Y_G * green + _Y_B * blue + _HALF) >> 16
    luma = _round_trip_blocks(luma, table_ptr, scale, dct_ptr, rows.shape[0]).to(tl.int32)

    # Chroma of the tile plus a one-block ring (CT >= TILE/2 + 16 samples each way).
    hc = (H + 1) // 2
    wc = (W + 1) // 2
    cy0 = y0 // 2 - 8
    cx0 = x0 // 2 - 8
    crows = tl.minimum(cy0 + tl.arange(0, CT), hc - 1)  # libjpeg repeats the last chroma row
    ccols = cx0 + tl.arange(0, CT)
    cb, cr = _chroma_tile(x_ptr, crows, ccols, H, W, HW)
    cb = _round_trip_blocks(cb, table_ptr + 64, scale, dct_ptr, CT)
    cr = _round_trip_blocks(cr, table_ptr + 64, scale, dct_ptr, CT)

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


def jpeg_round_trip_triton(x: torch.Tensor, quality: torch.Tensor, tile: int | None = None) -> torch.Tensor:
    """uint8 [N,3,H,W] -> uint8 [N,3,H,W]; quality int [N] on x's device (0 = copy the sample).

    tile: output pixels per program side (power of two, >= 16); default 32 on a GPU and the whole
    padded image under the interpreter, where fewer, larger programs run much faster."""
    n, channels, h, w = x.shape
    if channels != 3:
        raise ValueError(f"expected 3 channels, got {channels}")
    x = x.contiguous()
    out = torch.empty_like(x)
    if n == 0:
        return out
    if tile is None:
        tile = next_pow2(max(h, w, 16)) if interpreting() else 32
    if tile < 16 or tile & (tile - 1):
        raise ValueError(f"tile must be a power of two >= 16, got {tile}")
    ct = next_pow2(tile // 2 + 16)
    quality = quality.to(device=x.device, dtype=torch.int32).contiguous()
    tables = K.base_tables(x.device)
    dct = dct_matrix(8, torch.float32, x.device)
    grid = (triton.cdiv(w, tile), triton.cdiv(h, tile), n)
    jpeg_round_trip_kernel[grid](x, out, quality, tables, dct, h, w, TILE=tile, CT=ct)
    return out
