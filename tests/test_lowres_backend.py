"""low_resolution(backend="triton") is rejected (there is no Triton kernel), and the degrade bench
names no row after a kernel that did not run (issue #15 item 9)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genimage_fast import degrade
from genimage_fast.bench.degrade import no_kernel


def test_triton_is_rejected_and_auto_runs_torchs_antialiased_resize() -> None:
    x = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    with pytest.raises(ValueError, match="no Triton kernel"):
        degrade.low_resolution(x, 16, backend="triton")
    want = F.interpolate(x.float(), size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(degrade.low_resolution(x, 16), torch.floor(want + 0.5).clamp(0, 255).to(torch.uint8))


def test_bench_skips_the_lowres_triton_row_and_says_why() -> None:
    assert "no Triton kernel" in (no_kernel("lowres", "triton") or "")
    assert no_kernel("lowres", "torch") is None and no_kernel("jpeg", "triton") is None
