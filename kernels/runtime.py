"""Small launch helpers shared by the Triton launchers (importing this does not import Triton)."""

from __future__ import annotations

import os


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU (TRITON_INTERPRET=1, read when triton is imported)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def next_pow2(value: int) -> int:
    """Smallest power of two >= value (Triton block shapes must be powers of two)."""
    return 1 << max(0, (value - 1).bit_length())
