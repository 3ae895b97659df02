"""pytest plugin for gpu-check: keep only the tests that need CUDA (`-p genimage_fast.bench.gpucheck.select_cuda`).

A test needs CUDA when it carries the `gpu` / `cuda` marker or a skipif whose reason names CUDA
(`tests/conftest.requires_cuda`). Everything else ran in CI on the CPU already."""

from __future__ import annotations

import pytest


def needs_cuda(item: pytest.Item) -> bool:
    if item.get_closest_marker("gpu") or item.get_closest_marker("cuda"):
        return True
    return any("cuda" in str(m.kwargs.get("reason", "")).lower() for m in item.iter_markers("skipif"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep = [i for i in items if needs_cuda(i)]
    dropped = [i for i in items if not needs_cuda(i)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
