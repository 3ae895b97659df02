"""gpu-check stages for the kernels and the degrade API (GPU-KERNELS).

On a GPU: exactness of the Triton JPEG / blur kernels against the torch references and against
PIL / scipy (every JPEG quality), throughput sweeps of the launch parameters (JPEG TILE {16, 32} x
warps {4, 8}, blur blocks) with CUDA events, the API paths beside the kernels and the references,
and host syncs per API call. In the dry run (CPU) the kernels cannot run (no interpreter in this
process): the torch references stand in, at tiny sizes, so only the plumbing is exercised.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from genimage_fast.bench.gpucheck.runner import Context, stage
from genimage_fast.bench.gpucheck.timing import time_calls

OWNER = "gpu-kernels"
JPEG_CONFIGS = ((16, 4), (16, 8), (32, 4), (32, 8))  # (TILE, num_warps)
BLUR_BLOCKS = ((8, 64), (16, 64), (4, 128), (16, 32))  # (rows, cols) per program


def _photos(ctx: Context, n: int, size: int, seed: int = 0) -> torch.Tensor:
    from genimage_fast.bench.degrade import photo_batch

    return torch.from_numpy(photo_batch(n, size, seed)).permute(0, 3, 1, 2).contiguous().to(ctx.device)


def _jpeg_kernel(ctx: Context) -> tuple[str, Callable[..., torch.Tensor]]:
    if ctx.device.type == "cuda":
        from genimage_fast.kernels.jpeg_triton import jpeg_round_trip_triton

        return "triton", jpeg_round_trip_triton
    from genimage_fast.kernels.jpeg_reference import jpeg_round_trip_reference

    return "torch (dry stand-in)", lambda x, q, tile=None, num_warps=None: jpeg_round_trip_reference(x, q)


def _blur_kernel(ctx: Context) -> tuple[str, Callable[..., torch.Tensor]]:
    if ctx.device.type == "cuda":
        from genimage_fast.kernels.blur_triton import gaussian_blur_triton

        return "triton", gaussian_blur_triton
    from genimage_fast.kernels.blur_reference import gaussian_blur_reference

    return "torch (dry stand-in)", lambda x, w, r, t, block=None: gaussian_blur_reference(x, w, t)


def _alternating(fn: Callable[[torch.Tensor], object], inputs: list[torch.Tensor]) -> Callable[[], None]:
    """fn on the inputs in turn, so one batch does not stay resident in L2 between calls."""
    state = {"i": 0}

    def call() -> None:
        state["i"] += 1
        fn(inputs[state["i"] % len(inputs)])

    return call


def _diff(a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
    d = (a.to(torch.int16) - b.to(torch.int16)).abs()
    return {"frac_equal": round(float((d == 0).float().mean()), 6), "mean_abs": round(float(d.float().mean()), 5),
            "max_abs": int(d.max()) if d.numel() else 0}


def _pil_jpeg(img: np.ndarray, q: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@stage("jpeg_exactness", order=20, budget_s=60, min_s=10, owner=OWNER)
def jpeg_exactness(ctx: Context) -> dict:
    """Kernel vs reference vs PIL at every quality 1..100 on photo crops (+ odd sizes, exact-half
    flat blocks, per-config), and the reference under TF32 (it computes in float64: unaffected)."""
    from genimage_fast.kernels.jpeg_reference import jpeg_round_trip_reference

    impl, kernel = _jpeg_kernel(ctx)
    size, crops = ctx.pick((224, 3), (32, 1))
    qualities = list(range(1, 101)) if not ctx.dry else [1, 50, 95]
    x0 = _photos(ctx, crops, size, seed=3)
    x = x0.repeat_interleave(len(qualities), 0)
    q = torch.tensor(qualities * crops, dtype=torch.int32, device=ctx.device)
    ref = jpeg_round_trip_reference(x, q)
    rows = []
    for tile, warps in JPEG_CONFIGS[:4 if not ctx.dry else 1]:
        out = kernel(x, q, tile=tile, num_warps=warps)
        rows.append({"what": f"kernel TILE={tile} warps={warps} vs reference", **_diff(out, ref)})
    odd = x0[:, :, : size - 13, : size - 27].contiguous()  # partial MCUs, odd chroma
    oq = torch.full((odd.shape[0],), 75, dtype=torch.int32, device=ctx.device)
    rows.append({"what": "kernel vs reference, odd size", **_diff(kernel(odd, oq), jpeg_round_trip_reference(odd, oq))})
    flat = torch.arange(100, 157, dtype=torch.uint8, device=ctx.device).view(-1, 1, 1, 1).expand(-1, 3, 16, 16)
    fq = torch.full((flat.shape[0],), 50, dtype=torch.int32, device=ctx.device)
    flat = flat.contiguous()
    ties = _diff(kernel(flat, fq), jpeg_round_trip_reference(flat, fq))
    rows.append({"what": "kernel vs reference, exact halves (flat, q50)", **ties})
    again = kernel(x, q)
    rows.append({"what": "kernel run twice (deterministic)", **_diff(again, kernel(x, q))})
    if ctx.device.type == "cuda" and ctx.time_left() > 20:
        # Samples past 2^31 bytes: the per-sample offset must be int64 in the kernel.
        big_n = (1 << 31) // (3 * size * size) + 8
        big = x0.repeat((big_n + crops - 1) // crops, 1, 1, 1)[:big_n].contiguous()
        bq = torch.full((big_n,), 50, dtype=torch.int32, device=ctx.device)
        tail = kernel(big, bq)[-8:]
        rows.append({"what": f"last 8 of a {big.numel() / 2**30:.1f} GiB batch vs reference",
                     **_diff(tail, jpeg_round_trip_reference(big[-8:], bq[-8:]))})
        del big, tail
        torch.cuda.empty_cache()
    # Against libjpeg itself (PIL), a subset so the stage stays short.
    host, ref_host = x.cpu().permute(0, 2, 3, 1).numpy(), ref.cpu().permute(0, 2, 3, 1).numpy()
    step = 1 if ctx.dry else 3
    pil = np.stack([_pil_jpeg(host[i], int(qualities[i % len(qualities)])) for i in range(0, len(host), step)])
    rows.append({"what": f"reference vs PIL ({len(pil)} image x quality pairs)",
                 **_diff(torch.from_numpy(ref_host[::step]), torch.from_numpy(pil))})
    prev = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        tf32 = jpeg_round_trip_reference(x, q)
    finally:
        torch.set_float32_matmul_precision(prev)
    rows.append({"what": "reference under matmul precision 'high' vs default", **_diff(tf32, ref)})
    return {"impl": impl, "images": int(x.shape[0]), "size": size, "qualities": f"{qualities[0]}..{qualities[-1]}",
            "all_exact": all(r["max_abs"] == 0 for r in rows), "rows": rows}


def _compiled_info(ctx: Context) -> dict[str, Any]:
    """Registers / spills of the most recently compiled JPEG kernel variant (Triton's cache)."""
    if ctx.device.type != "cuda":
        return {}
    try:
        from genimage_fast.kernels.jpeg_triton import jpeg_round_trip_kernel

        cache = jpeg_round_trip_kernel.device_caches[ctx.device.index or 0][0]
        compiled = list(cache.values())[-1]
        return {"n_regs": compiled.n_regs, "n_spills": compiled.n_spills}
    except Exception as exc:  # Triton internals differ between versions: report, do not fail
        return {"n_regs": f"n/a ({type(exc).__name__})"}


@stage("jpeg_sweep", order=25, budget_s=60, min_s=15, owner=OWNER)
def jpeg_sweep(ctx: Context) -> dict:
    """JPEG kernel img/s at 256 x 224² (CUDA events, 5 warm-ups, 2 alternating batches) for
    TILE {16, 32} x warps {4, 8}: the measurement that picks DEFAULT_TILE / DEFAULT_WARPS."""
    impl, kernel = _jpeg_kernel(ctx)
    n, size, iters = ctx.pick((256, 224, 30), (2, 32, 2))
    inputs = [_photos(ctx, n, size, seed) for seed in (0, 1)]
    q = torch.full((n,), 65, dtype=torch.int32, device=ctx.device)
    rows = []
    for tile, warps in JPEG_CONFIGS if not ctx.dry else JPEG_CONFIGS[2:3]:
        call = _alternating(lambda t, tile=tile, warps=warps: kernel(t, q, tile=tile, num_warps=warps), inputs)
        t = time_calls(call, ctx.device, warmup=5, iters=iters, max_s=max(1.0, ctx.time_left() / 8))
        rows.append({"tile": tile, "warps": warps, "img_per_s": round(n / (t["ms_median"] / 1e3)),
                     "ms_median": t["ms_median"], "ms_min": t["ms_min"], **_compiled_info(ctx)})
    best = max(rows, key=lambda r: r["img_per_s"])
    from genimage_fast.kernels import jpeg_triton

    return {"impl": impl, "batch": n, "size": size, "quality": 65, "rows": rows,
            "best": {"tile": best["tile"], "warps": best["warps"], "img_per_s": best["img_per_s"]},
            "defaults": {"tile": jpeg_triton.DEFAULT_TILE, "warps": jpeg_triton.DEFAULT_WARPS},
            "target_img_per_s": 300_000}


@stage("blur_sweep", order=30, budget_s=45, min_s=10, owner=OWNER)
def blur_sweep(ctx: Context) -> dict:
    """Blur kernel (float and uint8-exact, sigma 3) exactness vs the reference and img/s per block."""
    from genimage_fast.kernels.blur_reference import gaussian_blur_reference, weight_table

    impl, kernel = _blur_kernel(ctx)
    n, size, iters = ctx.pick((256, 224, 30), (2, 32, 2))
    inputs = [_photos(ctx, n, size, seed) for seed in (0, 1)]
    weights, radii = weight_table([3.0] * n)
    rows = []
    for exact in (False, True):
        w = weights.to(device=ctx.device, dtype=torch.float64 if exact else torch.float32)
        r = radii.to(ctx.device)
        ref = gaussian_blur_reference(inputs[0], weights.to(ctx.device), exact)
        for block in BLUR_BLOCKS if not ctx.dry else BLUR_BLOCKS[:1]:
            out = kernel(inputs[0], w, r, exact, block=block)
            call = _alternating(lambda t, b=block, w=w, r=r, e=exact: kernel(t, w, r, e, block=b), inputs)
            t = time_calls(call, ctx.device, warmup=5, iters=iters, max_s=max(1.0, ctx.time_left() / 10))
            rows.append({"mode": "uint8-exact" if exact else "float", "block": f"{block[0]}x{block[1]}",
                         "img_per_s": round(n / (t["ms_median"] / 1e3)), "ms_median": t["ms_median"],
                         **_diff(out, ref)})
    return {"impl": impl, "batch": n, "size": size, "sigma": 3.0, "rows": rows, "target_img_per_s": 1_000_000}


def _api_calls(x: torch.Tensor, backend: str) -> dict[str, Callable[[], torch.Tensor]]:
    from genimage_fast import degrade

    gen = torch.Generator().manual_seed(0)  # CPU generator: what the trainer passes
    q = torch.full((x.shape[0],), 65, dtype=torch.int32)  # a host tensor, uploaded by the call
    return {
        "jpeg(x, 65)": lambda: degrade.jpeg(x, 65, backend=backend),
        "jpeg(x, cpu q[N])": lambda: degrade.jpeg(x, q, backend=backend),
        "gaussian_blur(x, 3.0)": lambda: degrade.gaussian_blur(x, 3.0, backend=backend),
        "gaussian_blur(x, 3.0, uint8)": lambda: degrade.gaussian_blur(x, 3.0, backend=backend, truncate_uint8=True),
        # no Triton kernel: `low_resolution(backend="triton")` is refused, so its row times the torch path
        "low_resolution(x, 112) [torch]": lambda: degrade.low_resolution(x, 112, backend="torch"),
        "cnnspot(x, cpu generator)": lambda: degrade.cnnspot(x, generator=gen, backend=backend),
    }


@stage("degrade_api", order=35, budget_s=45, min_s=10, owner=OWNER)
def degrade_api(ctx: Context) -> dict:
    """API img/s at bs 256 and 64 (Triton) beside the torch reference at bs 256, CUDA events."""
    backends = ("triton", "torch") if ctx.device.type == "cuda" else ("torch",)
    sizes = ctx.pick((256, 64), (2,))
    size, iters = ctx.pick((224, 20), (32, 2))
    rows = []
    for backend in backends:
        for n in sizes if backend == "triton" else sizes[:1]:
            x = _photos(ctx, n, size)
            for name, call in _api_calls(x, backend).items():
                if ctx.time_left() < 5:
                    rows.append({"call": name, "backend": backend, "batch": n, "img_per_s": "skipped (time)"})
                    continue
                t = time_calls(call, ctx.device, warmup=5 if not ctx.dry else 1, iters=iters,
                               max_s=max(0.5, ctx.time_left() / 20))
                rows.append({"call": name, "backend": backend, "batch": n,
                             "img_per_s": round(n / (t["ms_median"] / 1e3)), "ms_median": t["ms_median"],
                             "host_wall_ms": t["wall_ms"]})
    return {"size": size, "rows": rows}


@stage("degrade_syncs", order=40, budget_s=30, min_s=5, owner=OWNER)
def degrade_syncs(ctx: Context) -> dict:
    """Host syncs per degrade call: the dispatch-level counter, and on CUDA
    torch.cuda.set_sync_debug_mode('error') over the same call (target: 0 everywhere)."""
    from genimage_fast.engine.syncs import count_syncs, cuda_sync_debug

    x = _photos(ctx, ctx.pick(64, 2), ctx.pick(224, 32))
    backend = "triton" if ctx.device.type == "cuda" else "torch"
    calls = _api_calls(x, backend)
    if ctx.device.type == "cuda":
        from genimage_fast import degrade

        qd = torch.full((x.shape[0],), 65, dtype=torch.int32, device=ctx.device)
        calls["jpeg(x, cuda q[N])"] = lambda: degrade.jpeg(x, qd)
        gd = torch.Generator(device=ctx.device).manual_seed(0)
        calls["cnnspot(x, cuda generator) [expected to sync]"] = lambda: degrade.cnnspot(x, generator=gd)
    rows = []
    for name, call in calls.items():
        call()  # JIT + per-device caches
        ctx.sync()
        counts = count_syncs(call)
        row: dict[str, Any] = {"call": name, "backend": backend, "syncs": counts.total, "where": counts.where[:3]}
        if ctx.device.type == "cuda":
            ctx.sync()
            try:
                with cuda_sync_debug("error"):
                    call()
                row["sync_debug_error"] = "none"
            except RuntimeError as exc:
                row["sync_debug_error"] = str(exc).splitlines()[0][:160]
            ctx.sync()
        rows.append(row)
    clean = [r for r in rows if "expected to sync" not in r["call"]]
    return {"all_zero": all(r["syncs"] == 0 and r.get("sync_debug_error", "none") == "none" for r in clean),
            "rows": rows}
