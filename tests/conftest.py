"""Shared fixtures: tiny demo trees and record sets made once per session (never committed data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def backend_missing(name: str) -> str | None:
    """Why loader backend `name` cannot run here (its library does not import), or None: the
    backend's own `missing()`, so tests skip exactly when the library would refuse."""
    from genimage_fast.loaders import LOADERS

    return LOADERS.get(name).missing()


def requires_backend(*names: str) -> pytest.MarkDecorator:
    """Skip unless every named loader backend is usable (e.g. the GPU box has no DALI, ffcv)."""
    why = [f"{n}: {backend_missing(n)}" for n in dict.fromkeys(names) if backend_missing(n)]
    return pytest.mark.skipif(bool(why), reason="; ".join(why) or "available")


def turbojpeg_missing() -> str | None:
    """Why the opt-in DCT-scaled JPEG decode (fast_jpeg_decode) cannot run here: decode.py's own check,
    so tests skip exactly when build_loader would refuse."""
    from genimage_fast.loaders.decode import turbojpeg_missing as why

    return why()


requires_turbojpeg = pytest.mark.skipif(turbojpeg_missing() is not None, reason=f"{turbojpeg_missing()}")


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make `names` (and their submodules) fail to import for one test, as on a box without them:
    None in sys.modules makes `import name` raise ModuleNotFoundError; monkeypatch restores them."""
    import sys

    for mod in [m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in names)]:
        monkeypatch.setitem(sys.modules, mod, None)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def without_turbojpeg(monkeypatch: pytest.MonkeyPatch):
    """This process as on a box without PyTurboJPEG (decode.py's cached handle re-probed both ways)."""
    from genimage_fast.loaders import decode

    hide_modules(monkeypatch, "turbojpeg")
    decode._turbojpeg_handle.cache_clear()
    assert decode.turbojpeg_missing() is not None
    yield
    decode._turbojpeg_handle.cache_clear()


def backend_param(*values: object, backends: tuple[str, ...] = ()) -> object:
    """pytest.param(*values) that skips when a backend it needs is missing (default: the str values
    that name one of dali, ffcv)."""
    needs = backends or tuple(v for v in values if v in ("dali", "ffcv"))
    return pytest.param(*values, marks=requires_backend(*needs))


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
        if fmt == "ffcv" and backend_missing("ffcv"):  # writing a .beton needs the library
            pytest.skip(f"ffcv records: {backend_missing('ffcv')}")
        key = (fmt, store, max_side)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"rec_{fmt}_{store.replace(':', '')}_{max_side}")
            convert(demo_tree, out, fmt=fmt, store=store, max_side=max_side, progress=False)
            cache[key] = out
        return cache[key]

    return make


_NEEDS = {("fmt", "ffcv"): "ffcv", ("backend", "dali"): "dali", ("backend", "ffcv"): "ffcv"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Parametrised cases with fmt='ffcv' (writing .beton needs ffcv) or backend='dali'/'ffcv' skip
    where that library is missing, in every test file (the GPU box has neither)."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        needs = {lib for (key, value), lib in _NEEDS.items() if params.get(key) == value}
        if needs:
            item.add_marker(requires_backend(*sorted(needs)))
