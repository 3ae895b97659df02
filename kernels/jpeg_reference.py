"""Plain torch reference of a libjpeg-turbo encode + decode round trip (baseline, 4:2:0, ISLOW-like).

The integer steps follow libjpeg-turbo exactly: fixed-point RGB->YCbCr, 2x2 chroma averaging with
its alternating 1/2 rounding bias, edge replication to whole MCUs, h2v2 "fancy" (triangle) chroma
upsampling and fixed-point YCbCr->RGB, and so does the DCT: libjpeg-turbo's integer "islow"
forward and inverse DCTs (as integer matrices with libjpeg's DESCALE rounding, see
jpeg_constants), its quantisation `(|t| + 4q) // 8q` (what jcdctmgr.c's reciprocal multiply
computes, exactly) and its IDCT range limit. The result is bit-exact against PIL at every quality.
(The float orthonormal DCT used before flipped coefficients whose quotient sits at or near .5:
flat blocks at q 48-51 are exact DC ties, which cost up to 1.4 levels mean on photo crops.)
The matmuls run in float64 on integer values (exact below 2^53, and immune to TF32 settings).
Vectorised over the batch; quality 0 marks a sample that passes through unchanged.
"""

from __future__ import annotations

import torch

from genimage_fast.kernels import jpeg_constants as K


def _replicate_to(t: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Repeat the last row / column of [..., H, W] out to height x width (libjpeg's edge expansion)."""
    h, w = t.shape[-2:]
    if height > h:
        t = torch.cat([t, t[..., -1:, :].expand(*t.shape[:-2], height - h, w)], dim=-2)
    if width > w:
        t = torch.cat([t, t[..., -1:].expand(*t.shape[:-1], width - w)], dim=-1)
    return t


def _interleave(even: torch.Tensor, odd: torch.Tensor, dim: int) -> torch.Tensor:
    """Alternate even/odd slices along dim (doubling its size)."""
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)


def rgb_to_ycc(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """jccolor.c rgb_ycc_convert on int32 tensors: exact libjpeg integers."""
    y = (K.Y_R * r + K.Y_G * g + K.Y_B * b + K.ONE_HALF) >> K.SCALEBITS
    cb = (K.CB_R * r + K.CB_G * g + K.CB_B * b + K.CBCR_OFFSET + K.ONE_HALF - 1) >> K.SCALEBITS
    cr = (K.CR_R * r + K.CR_G * g + K.CR_B * b + K.CBCR_OFFSET + K.ONE_HALF - 1) >> K.SCALEBITS
    return y, cb, cr


def ycc_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """jdcolor.c ycc_rgb_convert on int32 tensors, range-limited to 0..255; stacks on dim 1."""
    cb, cr = cb - 128, cr - 128
    r = y + ((K.R_CR * cr + K.ONE_HALF) >> K.SCALEBITS)
    g = y + ((K.G_CB * cb + K.ONE_HALF + K.G_CR * cr) >> K.SCALEBITS)
    b = y + ((K.B_CB * cb + K.ONE_HALF) >> K.SCALEBITS)
    return torch.stack([r, g, b], dim=1).clamp(0, 255)


def _descale(v: torch.Tensor, bits: int) -> torch.Tensor:
    """libjpeg's DESCALE on integer-valued float64: (v + 2^(bits-1)) >> bits (floor)."""
    return torch.floor((v + float(1 << (bits - 1))) * (1.0 / (1 << bits)))


def _block_round_trip(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """int32 [N, H8, W8] samples -> islow DCT, quantise, dequantise, islow IDCT, range limit."""
    n, h, w = plane.shape
    fdct, idct = K.islow_matrices(plane.device, torch.float64)

    def along_w(v: torch.Tensor, m: torch.Tensor, bits: int) -> torch.Tensor:  # each row's 8-runs
        return _descale(torch.matmul(v.view(n, h, w // 8, 8), m.T), bits).view(n, h, w)

    def along_h(v: torch.Tensor, m: torch.Tensor, bits: int) -> torch.Tensor:  # each column's 8-runs
        return _descale(torch.matmul(m, v.view(n, h // 8, 8, w)), bits).view(n, h, w)

    x = plane.to(torch.float64) - 128.0
    coef = along_h(along_w(x, fdct, K.FDCT_SHIFTS[0]), fdct, K.FDCT_SHIFTS[1])  # x8 scaled
    q = table.to(torch.float64).view(n, 1, 8, 1, 8).expand(n, h // 8, 8, w // 8, 8).reshape(n, h, w)
    level = torch.sign(coef) * torch.floor((coef.abs() + 4.0 * q) / (8.0 * q))  # exact: integers < 2^24
    pixels = along_w(along_h(level * q, idct, K.IDCT_SHIFTS[0]), idct, K.IDCT_SHIFTS[1])
    return K.range_limit(pixels.to(torch.int32))


def _fancy_upsample(c: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """jdsample.c h2v2_fancy_upsample of the real chroma samples c [N, Hc, Wc] -> [N, height, width]:
    3 x nearer + 1 x farther sample (edges repeat), rows then columns, then (+8 | +7) >> 4."""
    prev_r = torch.cat([c[:, :1], c[:, :-1]], dim=1)
    next_r = torch.cat([c[:, 1:], c[:, -1:]], dim=1)
    colsum = _interleave(3 * c + prev_r, 3 * c + next_r, dim=1)[:, :height]
    prev_c = torch.cat([colsum[:, :, :1], colsum[:, :, :-1]], dim=2)
    next_c = torch.cat([colsum[:, :, 1:], colsum[:, :, -1:]], dim=2)
    out = _interleave((3 * colsum + prev_c + 8) >> 4, (3 * colsum + next_c + 7) >> 4, dim=2)
    return out[:, :, :width]


def jpeg_round_trip_reference(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """uint8 [N,3,H,W] -> uint8 [N,3,H,W] after a simulated JPEG round trip at quality[N] (0 = copy)."""
    n, _, h, w = x.shape
    dev = x.device
    h16, w16 = -(-h // 16) * 16, -(-w // 16) * 16
    hc, wc = -(-h // 2), -(-w // 2)
    # Edge-replicate to whole MCUs (jcsample expand_right_edge, jcprepct expand_bottom_edge).
    img = _replicate_to(x.to(torch.int32), h16, w16)
    luma, cb, cr = rgb_to_ycc(img[:, 0], img[:, 1], img[:, 2])

    # Chroma: 2x2 sums of full-res rows padded to even only, with jcsample h2v2_downsample's
    # alternating 1/2 bias; then libjpeg repeats the last chroma row down to the MCU boundary.
    bias = 1 + torch.arange(w16 // 2, dtype=torch.int32, device=dev) % 2  # 1, 2, 1, 2 ... (no upload)
    chroma = []
    for plane in (cb, cr):
        sums = plane[:, : 2 * hc].reshape(n, hc, 2, w16 // 2, 2).sum(dim=(2, 4), dtype=torch.int32)
        chroma.append(_replicate_to((sums + bias) >> 2, h16 // 2, w16 // 2))
    cb_ds, cr_ds = chroma

    tables = K.quant_tables(quality)
    y_dec = _block_round_trip(luma, tables[:, 0])[:, :h, :w]
    cb_dec = _block_round_trip(cb_ds, tables[:, 1])[:, :hc, :wc]
    cr_dec = _block_round_trip(cr_ds, tables[:, 1])[:, :hc, :wc]
    out = ycc_to_rgb(y_dec, _fancy_upsample(cb_dec, h, w), _fancy_upsample(cr_dec, h, w)).to(torch.uint8)
    keep = (quality <= 0).view(n, 1, 1, 1)
    return torch.where(keep, x, out)
