"""`genimage-fast bench degrade`: degradation images/s per op and backend vs per-image PIL / scipy.

Baselines (one image at a time, as CNNSpot and the paper's evaluation did): PIL JPEG save +
reopen, scipy `gaussian_filter` on the uint8 array, PIL bilinear resize. Ours on the CPU: the
"cpu" path (what backend="auto" runs there) and the plain torch reference; on CUDA: the Triton
kernels and the torch reference on the GPU, plus DALI's GPU operators when DALI is installed.
Inputs are 224x224 crops of a real photograph (JPEG speed depends on content).
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
    images = photo_batch(batch_size, image_size)
    host_list = list(images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None

    rows: list[Measurement] = []
    skipped: list[str] = []
    for op_name, op in bench_ops.items():
        n, secs = time_call(lambda op=op: op.baseline(host_list), batch_size, iters)
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
            else:
                api = "auto" if backend == "cpu" else backend  # the CPU path is what auto runs there
                n, secs = time_call(lambda op=op, b=api: op.ours(x, b), batch_size, iters, sync=sync)
            rows.append(Measurement(f"{op_name}/{backend}", n, secs, extra={"device": str(dev)}))

    settings = {"batch_size": batch_size, "image_size": image_size, "ops": op_names, "backends": names,
                "iters": iters, "device": str(dev), "jpeg_quality": QUALITY, "blur_sigma": SIGMA,
                "lowres_size": LOW_SIZE, "skipped": skipped}
    report("bench degrade", rows, json_path, settings, group=lambda m: m.name.split("/")[0])
    return 0
