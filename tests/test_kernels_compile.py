"""The Triton kernels compile for an H100 (sm_90) without a GPU: catches codegen errors the
interpreter cannot see, and checks that the exact blur keeps scipy's rounding (no FMA)."""

from __future__ import annotations

import re

import pytest

from genimage_fast.kernels.runtime import interpreting

pytestmark = pytest.mark.skipif(interpreting(), reason="TRITON_INTERPRET=1 replaces kernels with the interpreter")


def _compile(fn, signature: dict[str, str], constexprs: dict[str, object], **options: object) -> dict[str, str]:
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    for name in constexprs:
        signature[name] = "constexpr"
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options).asm


@pytest.mark.parametrize("exact", [False, True])
def test_blur_kernel_compiles_and_exact_mode_has_no_fma(exact: bool) -> None:
    from genimage_fast.kernels.blur_triton import STORE_FLOAT, STORE_TRUNCATE, blur_pass_kernel

    fp = "fp64" if exact else "fp32"
    asm = _compile(
        blur_pass_kernel,
        {"src_ptr": "*u8", "dst_ptr": "*u8" if exact else "*fp32", "weight_ptr": f"*{fp}", "radius_ptr": "*i32",
         "C": "i32", "H": "i32", "W": "i32", "weight_stride": "i32"},
        {"AXIS": 1, "STORE": STORE_TRUNCATE.value if exact else STORE_FLOAT.value, "EXACT": exact,
         "BLOCK_C": 4, "BLOCK_H": 8, "BLOCK_W": 64},
        enable_fp_fusion=False,  # as the launcher passes it
    )
    assert "cubin" in asm
    suffix = "f64" if exact else "f32"
    assert re.search(rf"\bmul\.rn\.{suffix}", asm["ptx"]) and re.search(rf"\badd\.rn\.{suffix}", asm["ptx"])
    assert not re.search(rf"\bfma\.[a-z.]*{suffix}", asm["ptx"])  # scipy multiplies, then adds


@pytest.mark.heavy
@pytest.mark.parametrize(("tile", "warps"), [(32, 4), (16, 8)])
def test_jpeg_kernel_compiles_for_sm90(tile: int, warps: int) -> None:
    from genimage_fast.kernels.jpeg_triton import jpeg_round_trip_kernel

    asm = _compile(
        jpeg_round_trip_kernel,
        {"x_ptr": "*u8", "out_ptr": "*u8", "quality_ptr": "*i32", "table_ptr": "*i32", "mat_ptr": "*i32",
         "H": "i32", "W": "i32"},
        {"TILE": tile, "CT": 32},
        num_warps=warps,
    )
    assert "cubin" in asm
    ptx = asm["ptx"]
    assert re.search(r"\bmma\.sync[a-z0-9.]*\.tf32", ptx)  # chroma upsampling matmuls on tensor cores
    # Quantisation is an exact integer division: no float division (div.full.f32 is approximate,
    # the finding) anywhere in the kernel.
    assert re.search(r"\bdiv\.[su]32", ptx)
    assert not re.search(r"\bdiv\.[a-z.]*f32", ptx)
