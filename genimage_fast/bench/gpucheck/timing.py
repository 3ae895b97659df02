"""Timing for gpu-check stages: CUDA events per call after warm-up (perf_counter on the CPU)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def time_calls(fn: Callable[[], Any], device: torch.device, warmup: int = 5, iters: int = 20,
               max_s: float | None = None) -> dict[str, float]:
    """Median / mean / min milliseconds per fn() call over `iters` timed calls after `warmup` calls
    (JIT, autotuning and allocator growth fall in the warm-up). On CUDA each call is bracketed by
    events on the current stream, so host-side launch time only counts where it stalls the GPU;
    `wall_ms` is the host's view of the whole timed loop per call. max_s stops early (>= 3 calls)."""
    cuda = device.type == "cuda"
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    pairs, walls = [], []
    t0 = time.perf_counter()
    for i in range(iters):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            pairs.append((start, end))
        else:
            s = time.perf_counter()
            fn()
            walls.append((time.perf_counter() - s) * 1e3)
        if max_s is not None and i >= 2 and time.perf_counter() - t0 > max_s:
            break
    if cuda:
        torch.cuda.synchronize(device)
        walls = [a.elapsed_time(b) for a, b in pairs]
    wall = (time.perf_counter() - t0) * 1e3 / len(walls)
    return {"ms_median": round(statistics.median(walls), 4), "ms_mean": round(statistics.fmean(walls), 4),
            "ms_min": round(min(walls), 4), "wall_ms": round(wall, 4), "calls": len(walls), "warmup": warmup}
