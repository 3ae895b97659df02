"""Shared benchmark plumbing: timing, the machine description, a uniform table and JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from genimage_fast.atomic import atomic_write_text


@dataclass
class Measurement:
    name: str  # what ran, e.g. "jpeg/triton" or "loader/cpu"
    images: int
    seconds: float
    baseline: bool = False  # the plain path others are compared against
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


def machine_info() -> dict[str, Any]:
    """What the figures came from: CPU count, Python/torch versions, the GPU if any."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def time_call(fn: Callable[[], Any], images_per_call: int, iters: int, warmup: int = 1,
              sync: Callable[[], None] | None = None) -> tuple[int, float]:
    """Run fn warmup + iters times; return (images, seconds) for the timed iterations."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if sync:
        sync()
    return images_per_call * iters, time.perf_counter() - start


def format_table(rows: list[Measurement], group: Callable[[Measurement], str] = lambda m: "") -> str:
    """A plain-text table with images/s and the ratio to the baseline of the same group."""
    baselines = {group(m): m.images_per_second for m in rows if m.baseline}
    lines = [f"{'name':<32} {'images':>8} {'seconds':>9} {'images/s':>12} {'vs baseline':>12}"]
    for m in rows:
        base = baselines.get(group(m))
        ratio = f"{m.images_per_second / base:.2f}x" if base else "-"
        lines.append(f"{m.name:<32} {m.images:>8} {m.seconds:>9.3f} {m.images_per_second:>12.1f} {ratio:>12}")
    return "\n".join(lines)


def report(title: str, rows: list[Measurement], json_path: str | None, settings: dict[str, Any],
           group: Callable[[Measurement], str] = lambda m: "") -> dict[str, Any]:
    """Print the table to stdout and write JSON (atomically) when asked; return the JSON payload."""
    baselines = {group(m): m.images_per_second for m in rows if m.baseline}
    payload = {
        "benchmark": title,
        "machine": machine_info(),
        "settings": settings,
        "results": [
            {**asdict(m), "images_per_second": m.images_per_second,
             "ratio_to_baseline": (m.images_per_second / baselines[group(m)]) if group(m) in baselines else None}
            for m in rows
        ],
    }
    sys.stdout.write(f"{title}\n{format_table(rows, group)}\n")
    if json_path:
        atomic_write_text(json_path, json.dumps(payload, indent=2))
    return payload
