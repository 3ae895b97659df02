"""Numba kernels for the spectral features, each beside its plain numpy reference.

The kernels do the non-FFT work: the 3x3 median noise residual (and its fused streaming sum), the
log-magnitude of an rfft2 half-spectrum expanded to the full spectrum, and the azimuthal binning.
Each kernel's `.py_func` is the same loops run by the Python interpreter (tests use it on tiny
inputs); the `*_reference` functions are the vectorised numpy forms the benchmark compares against.

Shapes: images are uint8 [N, C, H, W] C-contiguous; planes are the N*C (H, W) slices. Kernels are
parallel over planes or rows (numba `prange`), so a single image still uses every core.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

LOG_EPS = 1e-3  # AutoGAN: log(|F| + 1e-3)


# --- 3x3 median residual ------------------------------------------------------------------------
# Borders: scipy.ndimage's default mode 'reflect' (half-sample symmetric) repeats the edge pixel
# for a radius-1 window, so clamping the indices reproduces it exactly.


@njit(inline="always", cache=True)
def _median9(a0, a1, a2, a3, a4, a5, a6, a7, a8):
    """Median of 9 by Paeth's 19 compare-exchange network (branch-free min/max, vectorisable)."""
    a1, a2 = min(a1, a2), max(a1, a2)
    a4, a5 = min(a4, a5), max(a4, a5)
    a7, a8 = min(a7, a8), max(a7, a8)
    a0, a1 = min(a0, a1), max(a0, a1)
    a3, a4 = min(a3, a4), max(a3, a4)
    a6, a7 = min(a6, a7), max(a6, a7)
    a1, a2 = min(a1, a2), max(a1, a2)
    a4, a5 = min(a4, a5), max(a4, a5)
    a7, a8 = min(a7, a8), max(a7, a8)
    a3 = max(a0, a3)
    a5 = min(a5, a8)
    a4, a7 = min(a4, a7), max(a4, a7)
    a6 = max(a3, a6)
    a4 = max(a1, a4)
    a2 = min(a2, a5)
    a4 = min(a4, a7)
    a4, a2 = min(a4, a2), max(a4, a2)
    a4 = max(a6, a4)
    return min(a4, a2)


@njit(inline="always", cache=True)
def _row_median_diff(src, y, width, height, out_row):
    """out_row[x] = src[y, x] - median3x3(src)[y, x] as int32, edges clamped (scipy 'reflect')."""
    ym = max(y - 1, 0)
    yp = min(y + 1, height - 1)
    for x in range(width):
        xm = max(x - 1, 0)
        xp = min(x + 1, width - 1)
        med = _median9(
            np.int32(src[ym, xm]), np.int32(src[ym, x]), np.int32(src[ym, xp]),
            np.int32(src[y, xm]), np.int32(src[y, x]), np.int32(src[y, xp]),
            np.int32(src[yp, xm]), np.int32(src[yp, x]), np.int32(src[yp, xp]),
        )
        out_row[x] = np.int32(src[y, x]) - med


@njit(parallel=True, cache=True)
def median_residual_kernel(x, out):
    """out[n, c] = (x - median3x3(x)) / 255 as float32; x uint8 [N, C, H, W]."""
    n_img, n_ch, height, width = x.shape
    scale = np.float32(1.0 / 255.0)
    for task in prange(n_img * n_ch * height):
        plane = task // height
        y = task - plane * height
        i = plane // n_ch
        c = plane - i * n_ch
        diff = np.empty(width, np.int32)
        _row_median_diff(x[i, c], y, width, height, diff)
        for col in range(width):
            out[i, c, y, col] = np.float32(diff[col]) * scale


@njit(parallel=True, cache=True)
def median_residual_sum_kernel(x, acc):
    """acc[c] += sum over n of (x - median3x3(x)) in integer levels; x uint8 [N, C, H, W].

    Fused residual + streaming sum: the [N, C, H, W] residual is never materialised, and an int64
    sum is exact, so any batching of the same images gives the same total.
    """
    n_img, n_ch, height, width = x.shape
    for task in prange(n_ch * height):
        c = task // height
        y = task - c * height
        diff = np.empty(width, np.int32)
        for i in range(n_img):
            _row_median_diff(x[i, c], y, width, height, diff)
            for col in range(width):
                acc[c, y, col] += diff[col]


def median3x3_reference(x: np.ndarray) -> np.ndarray:
    """Vectorised numpy 3x3 median per plane (edge padding = scipy 'reflect' for radius 1)."""
    pad = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    height, width = x.shape[-2:]
    windows = np.stack([pad[..., dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)])
    return np.median(windows, axis=0).astype(x.dtype)


def median_residual_reference(x: np.ndarray) -> np.ndarray:
    """Plain numpy noise residual: (x - median3x3(x)) / 255 as float32."""
    return ((x.astype(np.float32) - median3x3_reference(x).astype(np.float32)) / 255.0).astype(np.float32)


# --- log magnitude --------------------------------------------------------------------------------


_LN2 = np.float32(0.6931471805599453)
_SQRT2 = np.float32(1.4142135)


@njit(inline="always", cache=True)
def _log_inplace(buf, bits):
    """buf[i] = log(buf[i]) for positive normal float32 values; `bits` is buf viewed as int32.

    libm's log is a scalar call numba cannot vectorise (no SVML here); this form is plain
    arithmetic LLVM turns into SIMD: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
    log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^9 (error < 1e-9,
    far below float32's own rounding).
    """
    one = np.float32(1.0)
    for i in range(buf.shape[0]):
        word = bits[i]
        exponent = np.float32((word >> 23) - 127)
        bits[i] = (word & 0x007FFFFF) | 0x3F800000  # the mantissa as a float in [1, 2)
        m = buf[i]
        big = m > _SQRT2
        m = np.float32(0.5) * m if big else m
        exponent = exponent + one if big else exponent
        t = (m - one) / (m + one)
        t2 = t * t
        series = np.float32(1 / 7) + t2 * np.float32(1 / 9)
        series = one + t2 * (np.float32(1 / 3) + t2 * (np.float32(1 / 5) + t2 * series))
        buf[i] = exponent * _LN2 + np.float32(2.0) * t * series


@njit(parallel=True, cache=True, fastmath=True)
def log_magnitude_kernel(half, scale, out):
    """out = log(|F| * scale + 1e-3), F the full 2-D spectrum whose rfft2 half is `half`.

    half complex [P, H, W//2 + 1] (P planes), out float32 [P, H, W]. The magnitude is taken in
    float64 (the FFT's precision), the log in float32 (the output's). The right half of a real
    signal's spectrum is the conjugate mirror of the left, F[u, v] = conj(F[-u, -v]); its
    magnitude is copied instead of recomputed.
    """
    n_planes, height, width = out.shape
    half_width = half.shape[2]
    for p in prange(n_planes):
        buf = np.empty(height * half_width, np.float32)
        i = 0
        for u in range(height):
            for v in range(half_width):
                z = half[p, u, v]
                buf[i] = np.float32(np.sqrt(z.real * z.real + z.imag * z.imag) * scale + LOG_EPS)
                i += 1
        _log_inplace(buf, buf.view(np.int32))
        for u in range(height):
            for v in range(half_width):
                out[p, u, v] = buf[u * half_width + v]
        for u in range(height):
            mirror_u = (height - u) % height
            for v in range(half_width, width):
                out[p, u, v] = out[p, mirror_u, width - v]


def log_magnitude_reference(full: np.ndarray, scale: float) -> np.ndarray:
    """Plain numpy: log(|F| * scale + 1e-3) of a full complex spectrum, as float32."""
    return np.log(np.abs(full) * scale + LOG_EPS).astype(np.float32)


# --- azimuthal binning ----------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def radial_sum_kernel(planes, bins, n_bins, out):
    """out[p, b] = sum of planes[p] over the pixels whose bins == b (bins < 0 are skipped)."""
    n_planes, height, width = planes.shape
    for p in prange(n_planes):
        for b in range(n_bins):
            out[p, b] = 0.0
        for y in range(height):
            for x in range(width):
                b = bins[y, x]
                if b >= 0:
                    out[p, b] += planes[p, y, x]


def radial_sum_reference(planes: np.ndarray, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Plain numpy radial sums: one bincount over all planes with per-plane bin offsets."""
    n_planes = planes.shape[0]
    keep = bins.ravel() >= 0
    index = (np.arange(n_planes)[:, None] * n_bins + bins.ravel()[keep][None, :]).ravel()
    values = planes.reshape(n_planes, -1)[:, keep].ravel()
    return np.bincount(index, weights=values, minlength=n_planes * n_bins).reshape(n_planes, n_bins)


# --- AutoGAN percentile scaling -------------------------------------------------------------------
# Exact order statistics in O(M) per plane: a histogram of the values locates the bins holding the
# needed ranks, and only those few values are sorted. np.percentile partitions the whole plane.

_HIST_BINS = 4096


@njit(inline="always", cache=True)
def _bin_of(value, low, inv_width, n_bins):
    return min(int((value - low) * inv_width), n_bins - 1)


@njit(cache=True)
def _select(values, k):
    """The k-th smallest (0-based) of `values`, reordering it in place (Hoare's quickselect).

    Used on the few values of one histogram bin; cheaper to compile than numba's np.sort.
    """
    lo, hi = 0, values.shape[0] - 1
    while lo < hi:
        pivot = values[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return values[k]


@njit(cache=True)  # not inlined: compiled once, outside the parallel loop's (slow) lowering
def _order_statistics(row, ranks):
    """The values of the given 0-based ranks in `row` (as if sorted), exactly."""
    low = row.min()
    high = row.max()
    out = np.empty(ranks.shape[0], np.float64)
    if high == low:
        out[:] = low
        return out
    inv_width = _HIST_BINS / (np.float64(high) - np.float64(low))
    counts = np.zeros(_HIST_BINS, np.int64)
    for j in range(row.shape[0]):
        counts[_bin_of(row[j], low, inv_width, _HIST_BINS)] += 1
    starts = np.zeros(_HIST_BINS + 1, np.int64)
    for b in range(_HIST_BINS):
        starts[b + 1] = starts[b] + counts[b]
    n_ranks = ranks.shape[0]
    targets = np.empty(n_ranks, np.int64)  # the bin whose range of ranks holds each rank
    for k in range(n_ranks):
        b = 0
        while starts[b + 1] <= ranks[k]:
            b += 1
        targets[k] = b
    widest = 0
    for k in range(n_ranks):
        widest = max(widest, counts[targets[k]])
    members = np.empty((n_ranks, widest), row.dtype)
    filled = np.zeros(n_ranks, np.int64)
    for j in range(row.shape[0]):  # one pass gathers the few values of every target bin
        b = _bin_of(row[j], low, inv_width, _HIST_BINS)
        for k in range(n_ranks):
            if b == targets[k]:
                members[k, filled[k]] = row[j]
                filled[k] += 1
    for k in range(n_ranks):
        out[k] = _select(members[k, :filled[k]], ranks[k] - starts[targets[k]])
    return out


@njit(parallel=True, cache=True, fastmath=False)
def autogan_normalize_kernel(planes, low_q, high_q, out):
    """out[p] = clip((planes[p] - q_low) / (q_high - q_low) * 2 - 1, -1, 1), q = np.percentile (linear).

    planes float32 [P, M] (finite values); a flat plane (q_high == q_low) maps to -1.
    """
    n_planes, size = planes.shape
    pos_low = low_q / 100.0 * (size - 1)
    pos_high = high_q / 100.0 * (size - 1)
    i_low, i_high = int(pos_low), int(pos_high)
    ranks = np.array([i_low, min(i_low + 1, size - 1), i_high, min(i_high + 1, size - 1)], np.int64)
    for p in prange(n_planes):
        row = planes[p]
        stats = _order_statistics(row, ranks)
        q_low = stats[0] + (stats[1] - stats[0]) * (pos_low - i_low)
        q_high = stats[2] + (stats[3] - stats[2]) * (pos_high - i_high)
        span = q_high - q_low
        scale = np.float32(2.0 / span) if span > 0 else np.float32(0.0)
        offset = np.float32(q_low)
        for j in range(size):
            value = (row[j] - offset) * scale - np.float32(1.0)
            out[p, j] = min(max(value, np.float32(-1.0)), np.float32(1.0))


def autogan_normalize_reference(planes: np.ndarray, low_q: float = 5.0, high_q: float = 95.0) -> np.ndarray:
    """Plain numpy: per-row np.percentile, scale to [-1, 1], clip (float32)."""
    low, high = np.percentile(planes, [low_q, high_q], axis=-1, keepdims=True)
    span = high - low
    scaled = np.where(span > 0, (planes - low) / np.where(span > 0, span, 1.0) * 2.0 - 1.0, -1.0)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)
