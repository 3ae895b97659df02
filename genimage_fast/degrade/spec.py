"""Degradation spec strings (`none`, `lr:S`, `jpeg:Q`, `blur:SIGMA`) and the DEGRADATIONS registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from genimage_fast.degrade import ops
from genimage_fast.degrade.validate import check_images, resolve_backend
from genimage_fast.kernels.jpeg_constants import QUALITY_MAX, QUALITY_MIN
from genimage_fast.registry import Registry


@dataclass(frozen=True)
class Degradation:
    """One spec kind: how to read its value and how to run it on a batch."""

    parse: Callable[[str], Any]  # "30" -> 30; raises ValueError
    run: Callable[[torch.Tensor, Any, str], torch.Tensor]  # (images, value, backend) -> images
    takes_value: bool = True


DEGRADATIONS: Registry[Degradation] = Registry("degradation")


def _int_in(lo: int, hi: int | None, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{what} must be an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bounds = f"within {lo}..{hi}" if hi is not None else f">= {lo}"
            raise ValueError(f"{what} must be {bounds}, got {value}")
        return value

    return parse


def _sigma(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"blur sigma must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"blur sigma must be finite and >= 0, got {text}")
    return value


def _identity(x: torch.Tensor, value: Any, backend: str) -> torch.Tensor:
    check_images(x)
    resolve_backend(backend, x)
    return x


DEGRADATIONS.add("none", Degradation(parse=lambda text: None, run=_identity, takes_value=False))
DEGRADATIONS.add("lr", Degradation(parse=_int_in(1, None, "lr size"),
                                   run=lambda x, v, b: ops.low_resolution(x, v, backend=b)))
DEGRADATIONS.add("jpeg", Degradation(parse=_int_in(QUALITY_MIN, QUALITY_MAX, "jpeg quality"),
                                     run=lambda x, v, b: ops.jpeg(x, v, backend=b)))
DEGRADATIONS.add("blur", Degradation(parse=_sigma, run=lambda x, v, b: ops.gaussian_blur(x, v, backend=b)))


def parse_spec(spec: str) -> tuple[str, Any]:
    """'jpeg:30' -> ('jpeg', 30); 'none' -> ('none', None); anything else raises ValueError."""
    if not isinstance(spec, str):
        raise ValueError(f"a degradation spec must be a string, got {spec!r}")
    name, sep, text = spec.strip().partition(":")
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {spec!r}; expected none, lr:S, jpeg:Q or blur:SIGMA")
    kind = DEGRADATIONS.get(name)
    if kind.takes_value != bool(sep):
        form = f"{name}:VALUE" if kind.takes_value else name
        raise ValueError(f"bad degradation spec {spec!r}; expected {form}")
    return name, kind.parse(text) if kind.takes_value else None


def apply(x: torch.Tensor, spec: str, backend: str = "auto") -> torch.Tensor:
    """Degrade a uint8 batch [N, 3, H, W] by one spec string (see parse_spec)."""
    name, value = parse_spec(spec)
    return DEGRADATIONS.get(name).run(x, value, backend)
