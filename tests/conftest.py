"""Shared fixtures: tiny demo trees and record sets made once per session (never committed data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo tree: all 8 generators, both splits (2 classes, 3 fakes per class)."""
    from genimage_fast.sources.demo import make_demo_data

    out = tmp_path_factory.mktemp("demo") / "genimage"
    make_demo_data(out, classes=2, per_class=3, seed=0)
    return out


@pytest.fixture(scope="session")
def make_records(tmp_path_factory: pytest.TempPathFactory, demo_tree: Path):
    """Factory: make_records(fmt, store='original', max_side=None) -> record folder, cached per args."""
    from genimage_fast.records.convert import convert

    cache: dict[tuple, Path] = {}

    def make(fmt: str, store: str = "original", max_side: int | None = None) -> Path:
        key = (fmt, store, max_side)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"rec_{fmt}_{store.replace(':', '')}_{max_side}")
            convert(demo_tree, out, fmt=fmt, store=store, max_side=max_side, progress=False)
            cache[key] = out
        return cache[key]

    return make
