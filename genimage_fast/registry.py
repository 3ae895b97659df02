"""Name -> object registries (models, loaders, record formats, degradations), timm's pattern."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from genimage_fast.errors import GenImageError

T = TypeVar("T")


def close_matches(name: str, choices: list[str]) -> str:
    """' (did you mean: a, b?)' for the closest names, or '' when none is close."""
    near = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f" (did you mean: {', '.join(near)}?)" if near else ""


class Registry(Generic[T]):
    """A named table of entries; lookups of unknown names raise GenImageError naming the choices."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REGISTRY.register("name")` on a class or function."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries)
            raise GenImageError(
                f"unknown {self.kind} {name!r}{close_matches(name, names)}; choose from: {', '.join(names)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
