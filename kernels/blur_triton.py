"""Triton kernel for scipy's separable Gaussian blur: one launch per pass (rows, then columns).

Each program blurs a tile (all channels) of one sample along one axis with that sample's weights and
radius (per-sample sigma in one launch), reading neighbours through scipy's 'reflect' index map.
The summation order is scipy's, and FMA contraction is switched off, so the uint8-truncating
mode (float64) reproduces scipy bit for bit; the float mode runs in float32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from genimage_fast.kernels.runtime import batch_chunks, device_guard, interpreting, next_pow2, upload

STORE_FLOAT: tl.constexpr = tl.constexpr(0)  # keep the float sum (first pass of float mode)
STORE_TRUNCATE: tl.constexpr = tl.constexpr(1)  # floor to uint8 (scipy writing into uint8)
STORE_ROUND: tl.constexpr = tl.constexpr(2)  # round half up to uint8 (last pass of float mode)


@triton.jit
def _reflect(index, length):
    period = 2 * length
    m = ((index % period) + period) % period
    return tl.where(m >= length, period - 1 - m, m)


@triton.jit
def blur_pass_kernel(src_ptr, dst_ptr, weight_ptr, radius_ptr, C, H, W, weight_stride,
                     AXIS: tl.constexpr, STORE: tl.constexpr, EXACT: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    pid_w = tl.program_id(0)
    pid_h = tl.program_id(1)
    n = tl.program_id(2).to(tl.int64)
    src_ptr += n * C * H * W
    dst_ptr += n * C * H * W
    weight_ptr += n * weight_stride
    radius = tl.load(radius_ptr + n)
    acc_type = tl.float64 if EXACT else tl.float32

    # A [channels, rows, cols] tile of one sample: all channels share the sample's kernel.
    chans = tl.arange(0, BLOCK_C)[:, None, None]
    rows = (pid_h * BLOCK_H + tl.arange(0, BLOCK_H))[None, :, None]
    cols = (pid_w * BLOCK_W + tl.arange(0, BLOCK_W))[None, None, :]
    mask = (chans < C) & (rows < H) & (cols < W)
    base = chans * H * W
    center = tl.load(src_ptr + base + rows * W + cols, mask=mask, other=0).to(acc_type)
    acc = center * tl.load(weight_ptr).to(acc_type)
    for t in range(0, radius):
        j = radius - t  # farthest pair first, as scipy's symmetric loop
        w = tl.load(weight_ptr + j).to(acc_type)
        if AXIS == 0:
            lo = base + _reflect(rows - j, H) * W + cols
            hi = base + _reflect(rows + j, H) * W + cols
        else:
            lo = base + rows * W + _reflect(cols - j, W)
            hi = base + rows * W + _reflect(cols + j, W)
        left = tl.load(src_ptr + lo, mask=mask, other=0).to(acc_type)
        right = tl.load(src_ptr + hi, mask=mask, other=0).to(acc_type)
        acc = acc + (left + right) * w
    if STORE == STORE_TRUNCATE:
        acc = tl.minimum(tl.maximum(tl.floor(acc), 0.0), 255.0)
    elif STORE == STORE_ROUND:
        acc = tl.minimum(tl.maximum(tl.floor(acc + 0.5), 0.0), 255.0)
    out = acc.to(dst_ptr.dtype.element_ty)
    tl.store(dst_ptr + base + rows * W + cols, out, mask=mask)


def gaussian_blur_triton(x: torch.Tensor, weights: torch.Tensor, radii: torch.Tensor,
                         truncate_uint8: bool = False, block: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 [N,C,H,W] -> uint8, per-sample weights [N, R+1] (float64) and radii [N] (int32).

    block: (rows, cols) per program, all channels at once; default (8, 64) on a GPU, the whole
    plane when interpreting."""
    n, c, h, w = x.shape
    x = x.contiguous()
    out = torch.empty_like(x)
    if x.numel() == 0:
        return out
    if block is None:
        block = (next_pow2(h), next_pow2(w)) if interpreting() else (8, 64)
    exact = bool(truncate_uint8)
    # Host tables go up pinned and non-blocking (a pageable upload would block the host).
    weights = upload(weights.to(torch.float64 if exact else torch.float32).contiguous(), x.device)
    radii = upload(radii.to(torch.int32).contiguous(), x.device)
    mid = torch.empty(x.shape, dtype=torch.uint8 if exact else torch.float32, device=x.device)
    tiles = (triton.cdiv(w, block[1]), triton.cdiv(h, block[0]))
    first, last = (STORE_TRUNCATE, STORE_TRUNCATE) if exact else (STORE_FLOAT, STORE_ROUND)
    with device_guard(x.device):
        for a, b in batch_chunks(n):  # grid z <= 65,535 samples per launch
            # enable_fp_fusion=False: no FMA contraction, so float64 sums round exactly as scipy's do.
            for axis, src, dst, store in ((0, x, mid, first), (1, mid, out, last)):
                blur_pass_kernel[(*tiles, b - a)](src[a:b], dst[a:b], weights[a:b], radii[a:b], c, h, w,
                                                  weights.stride(0), AXIS=axis, STORE=store, EXACT=exact,
                                                  BLOCK_C=next_pow2(c), BLOCK_H=block[0], BLOCK_W=block[1],
                                                  enable_fp_fusion=False)
    return out
