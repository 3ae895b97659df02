"""ImageNet-1k WordNet ids in the standard sorted order (class index = position), read from timm."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from genimage_fast.errors import GenImageError

# timm ships the 1000 sorted ImageNet-1k synsets as package data. We locate the file through timm's
# import spec instead of importlib.resources.files("timm.data._info"): that would import timm, and
# with it torch (seconds), just to read a text file while scanning.
_RELATIVE = Path("data") / "_info" / "imagenet_synsets.txt"


def _synset_file() -> Path:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise GenImageError("cannot find timm, which ships the ImageNet synset list; install timm")
    return Path(next(iter(spec.submodule_search_locations))) / _RELATIVE


@functools.lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids, index = class id (n01440764 is 0)."""
    path = _synset_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GenImageError(f"cannot read the ImageNet synset list {path}: {exc.strerror}") from None
    wnids = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(wnids) != 1000:
        raise GenImageError(f"{path} lists {len(wnids)} synsets, expected 1000")
    return wnids


@functools.lru_cache(maxsize=1)
def synset_to_index() -> dict[str, int]:
    """WordNet id -> ImageNet class id."""
    return {wnid: i for i, wnid in enumerate(imagenet_synsets())}


def wnid_class_id(wnid: str) -> int:
    """The class id of a WordNet id, -1 when it is not one of the 1000 ImageNet-1k classes."""
    return synset_to_index().get(wnid, -1)
