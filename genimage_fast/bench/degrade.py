"""`genimage-fast bench degrade`: degradation images/s per op and backend vs per-image PIL / scipy.

Baselines (one image at a time, as CNNSpot and the paper's evaluation did): PIL JPEG save +
reopen, scipy `gaussian_filter` on the uint8 array, PIL bilinear resize. Ours on the CPU: the
"cpu" path (what backend="auto" runs there) and the plain torch reference; on CUDA: the Triton
kernels through the API ("op/triton": validation, tables, uploads and launch) and alone
("op/triton-kernel": the launcher on device-resident parameters), the torch reference on the GPU,
plus DALI's GPU operators when DALI is installed. On CUDA each timed call is bracketed by CUDA
events after >= 5 warm-up calls (JIT and caches excluded), with >= 256 images per call (the
batch is raised to 256 if smaller, and says so) on two alternating input batches, so one batch
does not sit in L2. Inputs are 224x224 crops of a real photograph (JPEG speed depends on content).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genimage_fast.bench.common import Measurement, report, time_call
from genimage_fast.devices import resolve_device
from genimage_fast.errors import GenImageError
from genimage_fast.registry import Registry

QUALITY, SIGMA, LOW_SIZE = 65, 3.0, 112  # Task 2 settings
GPU_MIN_BATCH, GPU_WARMUP, GPU_MIN_ITERS = 256, 5, 20


@dataclass(frozen=True)
class BenchOp:
    """One op: its per-image baseline and our batched call for a backend."""

    baseline: Callable[[list[np.ndarray]], object]
    ours: Callable[[torch.Tensor, str], torch.Tensor]
    dali: Callable[..., object] | None  # (fn, images) -> DataNode, None when DALI has no such op


BENCH_OPS: Registry[BenchOp] = Registry("degrade benchmark op")


def _pil_jpeg(images: list[np.ndarray]) -> None:
    from PIL import Image

    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=QUALITY)
        buf.seek(0)
        np.asarray(Image.open(buf).convert("RGB"))


def _scipy_blur(images: list[np.ndarray]) -> None:
    from scipy.ndimage import gaussian_filter

    for img in images:
        gaussian_filter(img, sigma=(SIGMA, SIGMA, 0))


def _pil_resize(images: list[np.ndarray]) -> None:
    from PIL import Image

    for img in images:
        np.asarray(Image.fromarray(img).resize((LOW_SIZE, LOW_SIZE), Image.BILINEAR))


def _ours(op: str) -> Callable[[torch.Tensor, str], torch.Tensor]:
    from genimage_fast import degrade

    calls: dict[str, Callable[[torch.Tensor, str], torch.Tensor]] = {
        "jpeg": lambda x, b: degrade.jpeg(x, QUALITY, backend=b),
        "blur": lambda x, b: degrade.gaussian_blur(x, SIGMA, backend=b),
        "blur_u8": lambda x, b: degrade.gaussian_blur(x, SIGMA, backend=b, truncate_uint8=True),
        "lowres": lambda x, b: degrade.low_resolution(x, LOW_SIZE, backend=b),
    }
    return calls[op]


BENCH_OPS.add("jpeg", BenchOp(_pil_jpeg, _ours("jpeg"),
                              lambda fn, x: fn.jpeg_compression_distortion(x, quality=QUALITY)))
BENCH_OPS.add("blur", BenchOp(_scipy_blur, _ours("blur"), lambda fn, x: fn.gaussian_blur(x, sigma=SIGMA)))
BENCH_OPS.add("blur_u8", BenchOp(_scipy_blur, _ours("blur_u8"), None))
BENCH_OPS.add("lowres", BenchOp(_pil_resize, _ours("lowres"), None))


def photo_batch(batch_size: int, image_size: int, seed: int = 0) -> np.ndarray:
    """uint8 [N, S, S, 3]: random crops of a real photograph (matplotlib's Grace Hopper)."""
    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    img = np.array(Image.open(path).convert("RGB"))
    if min(img.shape[:2]) < image_size:
        scale = image_size / min(img.shape[:2])
        size = (max(image_size, round(img.shape[1] * scale)), max(image_size, round(img.shape[0] * scale)))
        img = np.array(Image.fromarray(img).resize(size, Image.BILINEAR))
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, img.shape[0] - image_size + 1, batch_size)
    xs = rng.integers(0, img.shape[1] - image_size + 1, batch_size)
    return np.stack([img[y : y + image_size, x : x + image_size] for y, x in zip(ys, xs, strict=True)])


def _dali_runner(op: BenchOp, images: np.ndarray, device: torch.device) -> Callable[[], object] | None:
    """A DALI pipeline applying op to the batch (CPU operators on the CPU, GPU ones on CUDA)."""
    if op.dali is None:
        return None
    try:
        import nvidia.dali.fn as fn
        import nvidia.dali.types as types
        from nvidia.dali import pipeline_def
    except ImportError:
        return None
    on_gpu = device.type == "cuda"
    if on_gpu:  # feed CUDA tensors (no host copy in the timed loop)
        samples: list = list(torch.from_numpy(images).to(device).unbind(0))
    else:
        samples = [np.ascontiguousarray(i) for i in images]

    device_id = (device.index or 0) if on_gpu else None  # None: a CPU-only pipeline

    @pipeline_def(batch_size=len(samples), num_threads=2, device_id=device_id, prefetch_queue_depth=1)
    def pipe():
        x = fn.external_source(source=lambda: samples, batch=True, layout="HWC", dtype=types.UINT8,
                               device="gpu" if on_gpu else "cpu")
        return op.dali(fn, x)

    pipeline = pipe()
    pipeline.build()
    return pipeline.run


def kernel_only(op: str, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The op's Triton launcher with its per-sample parameters already on the device (no API work)."""
    from genimage_fast.kernels.blur_reference import weight_table

    n = x.shape[0]
    if op == "jpeg":
        from genimage_fast.kernels.jpeg_triton import jpeg_round_trip_triton

        q = torch.full((n,), QUALITY, dtype=torch.int32, device=x.device)
        return lambda t: jpeg_round_trip_triton(t, q)
    if op in ("blur", "blur_u8"):
        from genimage_fast.kernels.blur_triton import gaussian_blur_triton

        exact = op == "blur_u8"
        weights, radii = weight_table([SIGMA] * n)
        w = weights.to(device=x.device, dtype=torch.float64 if exact else torch.float32)
        r = radii.to(x.device)
        return lambda t: gaussian_blur_triton(t, w, r, exact)
    return None  # low resolution is torch's own interpolation kernel


def _gpu_time(fn: Callable[[torch.Tensor], object], inputs: list[torch.Tensor], iters: int) -> tuple[int, float]:
    """(images, seconds) from CUDA events: median per call x calls, inputs alternating."""
    from genimage_fast.bench.gpucheck.timing import time_calls

    state = {"i": 0}

    def call() -> None:
        state["i"] += 1
        fn(inputs[state["i"] % len(inputs)])

    t = time_calls(call, inputs[0].device, warmup=GPU_WARMUP, iters=max(iters, GPU_MIN_ITERS))
    return inputs[0].shape[0] * t["calls"], t["ms_median"] * t["calls"] / 1e3


def no_kernel(op: str, backend: str) -> str | None:
    """Why a row cannot be measured under this backend's name (so no row is named after what did not run)."""
    if op == "lowres" and backend == "triton":
        return "lowres/triton (no Triton kernel: torch's interpolation is the lowres/torch row)"
    return None


def _backends(text: str, device: torch.device) -> list[str]:
    """'auto' = every path that makes sense on the device; else a comma list of cpu,torch,triton,dali."""
    if text == "auto":
        return ["triton", "torch", "dali"] if device.type == "cuda" else ["cpu", "torch", "dali"]
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = sorted(set(names) - {"cpu", "torch", "triton", "dali"})
    if unknown or not names:
        raise GenImageError(f"unknown backend(s) {', '.join(unknown) or text!r}; choose from cpu, torch, triton, dali")
    if "triton" in names and device.type != "cuda":
        raise GenImageError("backend triton is benchmarked on CUDA only (the interpreter is not a benchmark)")
    if "cpu" in names and device.type == "cuda":
        raise GenImageError("backend cpu runs on CPU tensors; use --device cpu")
    return names


def bench_degrade_command(batch_size: int = 64, image_size: int = 224, ops: str = "jpeg,blur,lowres",
                          backends: str = "auto", iters: int = 5, json_path: str | None = None,
                          device: str = "auto") -> int:
    dev = resolve_device(device)
    op_names = [o.strip() for o in ops.split(",") if o.strip()]
    bench_ops = {name: BENCH_OPS.get(name) for name in op_names}
    names = _backends(backends, dev)
    cuda = dev.type == "cuda"
    requested = batch_size
    if cuda:
        batch_size = max(batch_size, GPU_MIN_BATCH)
    images = photo_batch(batch_size, image_size)
    host_list = list(images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(dev)
    inputs = [x, torch.from_numpy(photo_batch(batch_size, image_size, seed=1)).permute(0, 3, 1, 2).contiguous().to(dev)]
    sync = torch.cuda.synchronize if cuda else None

    rows: list[Measurement] = []
    skipped: list[str] = []
    for op_name, op in bench_ops.items():
        base = host_list[: min(len(host_list), 64)]  # the per-image baseline: 64 images are plenty
        n, secs = time_call(lambda op=op, b=base: op.baseline(b), len(base), iters)
        rows.append(Measurement(f"{op_name}/baseline-per-image", n, secs, baseline=True))
        for backend in names:
            if backend == "dali":
                try:
                    run = _dali_runner(op, images, dev)
                except Exception as exc:  # noqa: BLE001 - a DALI failure must not lose the other rows
                    run, why = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
                else:
                    why = "DALI not installed or no such operator"
                if run is None:
                    skipped.append(f"{op_name}/dali ({why})")
                    continue
                n, secs = time_call(run, batch_size, iters, sync=sync)
                rows.append(Measurement(f"{op_name}/dali", n, secs, extra={"device": str(dev), "timer": "wall"}))
                continue
            if (why := no_kernel(op_name, backend)) is not None:
                skipped.append(why)
                continue
            api = "auto" if backend == "cpu" else backend  # the CPU path is what auto runs there
            if cuda:
                n, secs = _gpu_time(lambda t, op=op, b=api: op.ours(t, b), inputs, iters)
            else:
                n, secs = time_call(lambda op=op, b=api: op.ours(x, b), batch_size, iters)
            rows.append(Measurement(f"{op_name}/{backend}", n, secs,
                                    extra={"device": str(dev), "timer": "cuda-events" if cuda else "wall"}))
            kernel = kernel_only(op_name, x) if backend == "triton" else None
            if kernel is not None:
                n, secs = _gpu_time(kernel, inputs, iters)
                rows.append(Measurement(f"{op_name}/triton-kernel", n, secs,
                                        extra={"device": str(dev), "timer": "cuda-events"}))

    settings = {"batch_size": batch_size, "requested_batch_size": requested, "image_size": image_size,
                "ops": op_names, "backends": names, "iters": max(iters, GPU_MIN_ITERS) if cuda else iters,
                "warmup": GPU_WARMUP if cuda else 1, "device": str(dev), "jpeg_quality": QUALITY,
                "blur_sigma": SIGMA, "lowres_size": LOW_SIZE, "skipped": skipped}
    if cuda and requested < GPU_MIN_BATCH:
        skipped.append(f"batch size raised from {requested} to {GPU_MIN_BATCH}: smaller GPU calls are launch-bound")
    report("bench degrade", rows, json_path, settings, group=lambda m: m.name.split("/")[0])
    return 0
