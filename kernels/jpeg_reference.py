"""Plain torch reference of a libjpeg-turbo encode + decode round trip (baseline, 4:2:0, ISLOW-like).

The integer steps follow libjpeg-turbo exactly: fixed-point RGB->YCbCr, 2x2 chroma averaging with
its alternating 1/2 rounding bias, edge replication to whole MCUs, h2v2 "fancy" (triangle) chroma
upsampling and fixed-point YCbCr->RGB. Only the DCT differs: a float orthonormal DCT instead of
libjpeg's fixed-point one, which flips a quantised coefficient now and then (~47 dB vs PIL).
Vectorised over the batch; quality 0 marks a sample that passes through unchanged.
"""

from __future__ import annotations

import torch
from genimage_fast.kernels import jpeg_constants as K


def _clamped(n: int, limit: int, device: torch.device) -> torch.Tensor:
    return torch.arange(n, device=device).clamp(max=limit - 1)


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


def _block_round_trip(plane: torch.Tensor, table: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """int32 [N, H8, W8] samples -> DCT, quantise (round half away from zero), dequantise, IDCT."""
    n, h, w = plane.shape
    blocks = (plane.to(torch.float32) - 128.0).view(n, h // 8, 8, w // 8, 8)
    q = table.to(torch.float32).view(n, 1, 8, 1, 8)
    coef = torch.einsum("ui,naibj,vj->naubv", dct, blocks, dct) / q
    coef = torch.sign(coef) * torch.floor(coef.abs() + 0.5)
    pixels = torch.einsum("ui,naubv,vj->naibj", dct, coef * q, dct) + 128.0
    return torch.floor(pixels + 0.5).clamp(0, 255).to(torch.int32).view(n, h, w)


def _fancy_upsample(c: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """jdsample.c h2v2_fancy_upsample of the real chroma samples c [N, Hc, Wc] -> [N, height, width]."""
    hc, wc = c.shape[1], c.shape[2]
    dev = c.device
    y = torch.arange(height, device=dev)
    near_r = y // 2
    far_r = torch.where(y % 2 == 0, near_r - 1, near_r + 1).clamp(0, hc - 1)
    colsum = 3 * c[:, near_r] + c[:, far_r]  # [N, height, Wc]
    x = torch.arange(width, device=dev)
    near_c = x // 2
    far_c = torch.where(x % 2 == 0, near_c - 1, near_c + 1).clamp(0, wc - 1)
    bias = torch.where(x % 2 == 0, 8, 7)
    return (3 * colsum[:, :, near_c] + colsum[:, :, far_c] + bias) >> 4


def jpeg_round_trip_reference(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """uint8 [N,3,H,W] -> uint8 [N,3,H,W] after a simulated JPEG round trip at quality[N] (0 = copy)."""
    n, _, h, w = x.shape
    dev = x.device
    h16, w16 = -(-h // 16) * 16, -(-w // 16) * 16
    hc, wc = -(-h // 2), -(-w // 2)
    img = x.to(torch.int32)

    # Luma: edge-replicate to whole MCUs (jcsample expand_right_edge / jcprepct expand_bottom_edge).
    rows, cols = _clamped(h16, h, dev), _clamped(w16, w, dev)
    rgb = img[:, :, rows][:, :, :, cols]
    luma, _, _ = rgb_to_ycc(rgb[:, 0], rgb[:, 1], rgb[:, 2])

    # Chroma: libjpeg pads full-res rows to even, downsamples, then repeats the last chroma row;
    # columns are replicated at full resolution before downsampling.
    crow = torch.arange(h16 // 2, device=dev).clamp(max=hc - 1)
    ccol = torch.arange(w16 // 2, device=dev)
    sums = [torch.zeros(n, h16 // 2, w16 // 2, dtype=torch.int32, device=dev) for _ in range(2)]
    for dy in (0, 1):
        r = (2 * crow + dy).clamp(max=h - 1)
        for dx in (0, 1):
            c = (2 * ccol + dx).clamp(max=w - 1)
            px = img[:, :, r][:, :, :, c]
            _, cb, cr = rgb_to_ycc(px[:, 0], px[:, 1], px[:, 2])
            sums[0] += cb
            sums[1] += cr
    bias = torch.where(ccol % 2 == 0, 1, 2).to(torch.int32)  # jcsample h2v2_downsample
    cb_ds, cr_ds = ((s + bias) >> 2 for s in sums)

    tables = K.quant_tables(quality)
    dct = K.dct_matrix(torch.float32, dev)
    y_dec = _block_round_trip(luma, tables[:, 0], dct)[:, :h, :w]
    cb_dec = _block_round_trip(cb_ds, tables[:, 1], dct)[:, :hc, :wc]
    cr_dec = _block_round_trip(cr_ds, tables[:, 1], dct)[:, :hc, :wc]
    out = ycc_to_rgb(y_dec, _fancy_upsample(cb_dec, h, w), _fancy_upsample(cr_dec, h, w)).to(torch.uint8)
    keep = (quality <= 0).view(n, 1, 1, 1)
    return torch.where(keep, x, out)
