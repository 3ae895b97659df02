"""gpu-check stages for the training side (GPU-TRAIN): host syncs per training step, the prefetcher's
copy/compute overlap, ResNet-50 bf16 channels_last engine steps (synthetic and with the cpu backend
+ nvJPEG in the loop), nvJPEG decode against PIL on 16 threads, and the torch.compile gain.

Every stage runs the engine's own pieces (recipes, Trainer.train_step, the loaders). In the dry run
(CPU) the sizes are tiny, torchvision's CPU decoder stands in for nvJPEG and nothing is compiled:
only the plumbing is exercised. Records are made once per run from the demo generator in
`ctx.out/gpucheck-records` (4 classes x 8 per class: 512 train images on the GPU; 1 x 2 in the dry run).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genimage_fast.bench.gpucheck.runner import Context, stage
from genimage_fast.bench.gpucheck.timing import time_calls

OWNER = "gpu-train"
RECIPES = Path(__file__).resolve().parents[3] / "recipes"
ALL_RECIPES = ("demo", "cnnspot", "resnet50", "deit_s", "swin_t", "spec", "f3net", "gramnet")
SMALL = {"swin_t": 224, "f3net": 64, "deit_s": 32}  # the smallest input each model takes
MODEL_KWARGS = {"f3net": ("model.kwargs.img_size=64",), "deit_s": ("model.kwargs.img_size=32",)}
# RESULTS.md's plain-CE ResNet-50, at the batch given (no global-batch accumulation)
PLAIN_CE = ("loss.name=ce", "aug.randaugment=", "aug.random_erase=0", "train.global_batch_size=0")


def records(ctx: Context) -> Path:
    """Demo records for the stages, made once per run (JPEG reals, PNG fakes, original store)."""
    from genimage_fast.records import open_records

    out = ctx.out / "gpucheck-records"
    try:
        open_records(out)
        return out
    except Exception:  # noqa: BLE001 - absent or half-made: make them
        pass
    import shutil
    import tempfile

    from genimage_fast.records.convert import convert
    from genimage_fast.sources.demo import make_demo_data

    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        tree = make_demo_data(Path(tmp) / "tree", classes=ctx.pick(4, 1), per_class=ctx.pick(8, 2), seed=0)
        convert(tree, out, fmt="dali", progress=False, workers=ctx.pick(min(16, os.cpu_count() or 1), 1))
    return out


def trainer(ctx: Context, recipe: str, overrides: tuple[str, ...] = ()):  # -> engine.train.Trainer
    from genimage_fast.config import load_config
    from genimage_fast.engine.distributed import DistContext
    from genimage_fast.engine.train import Trainer

    cfg = load_config(RECIPES / f"{recipe}.yaml", (*overrides, f"train.device={ctx.device}"))
    dist = DistContext(rank=0, world_size=1, local_rank=0, device=ctx.device)
    return Trainer(cfg, records(ctx), None, None, dist)


def _small(recipe: str, batch: int) -> tuple[str, ...]:
    size = SMALL.get(recipe, 32)
    return (f"data.image_size={size}", f"data.resize_size={size + size // 8}", f"train.batch_size={batch}",
            "data.backend=cpu", "data.num_workers=0", "train.compile=false", "train.global_batch_size=0",
            "aug.repeated_aug=1",
            *MODEL_KWARGS.get(recipe, ()))


def count_step_syncs(ctx: Context, step: Callable[[], object]) -> dict[str, Any]:
    """One call of step() under engine.syncs.SyncCounter, and on CUDA also under the driver-level
    sync debug mode ("warn": every synchronising call is one warning)."""
    from genimage_fast.engine.syncs import SyncCounter, cuda_sync_debug

    ctx.sync()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        debug = cuda_sync_debug("warn") if ctx.device.type == "cuda" else contextlib.nullcontext()
        with debug, SyncCounter() as counter:
            step()
    cuda = [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]
    res: dict[str, Any] = {"counter": counter.counts.total, "where": counter.counts.where[:3]}
    if ctx.device.type == "cuda":
        res["cuda_sync_warnings"] = len(cuda)
        res["cuda_first"] = cuda[0][:160] if cuda else None
    return res


@stage("train_step_syncs", order=50, budget_s=90, min_s=20, owner=OWNER)
def train_step_syncs(ctx: Context) -> dict:
    """Host syncs in one training step (after a warm step) of every recipe at a small size: the
    SyncCounter and, on CUDA, torch.cuda.set_sync_debug_mode. Target: zero everywhere."""
    rows = []
    for name in ctx.pick(ALL_RECIPES, ("demo",)):
        if ctx.time_left() < 8:
            rows.append({"recipe": name, "status": "skipped: time"})
            continue
        t = trainer(ctx, name, _small(name, ctx.pick(8, 2)))
        batches = iter(t.loader)
        t.train_step([next(batches)])  # cuDNN / Triton / allocator set-up may sync once
        batch = next(batches).to(ctx.device)
        rows.append({"recipe": name, **count_step_syncs(ctx, lambda t=t, b=batch: t.train_step([b]))})
    measured = [r for r in rows if "counter" in r]
    zero = all(r["counter"] == 0 and not r.get("cuda_sync_warnings") for r in measured)
    return {"zero_syncs_every_recipe": zero and len(measured) == len(rows), "rows": rows,
            "note": "dry (CPU): unfused Adam's host-side step reads count; CUDA uses the fused optimizer"}


# ---------------------------------------------------------------------------------------------- prefetch


class _Handover:
    """A stream whose wait_event does the old `wait_stream(side)` (or nothing, for the race control)."""

    def __init__(self, real: Any, side: Any, mode: str) -> None:
        self.real, self.side, self.mode = real, side, mode

    def wait_event(self, event: Any) -> None:
        if self.mode == "wait_stream":
            self.real.wait_stream(self.side)


def _variant(mode: str):  # -> CudaStreams
    from genimage_fast.loaders.prefetch import CudaStreams

    class Variant(CudaStreams):
        def side_stream(self, device: torch.device) -> Any:
            self.side = super().side_stream(device)
            return self.side

        def current_stream(self, device: torch.device) -> Any:
            return _Handover(super().current_stream(device), self.side, mode)

        def record_stream(self, tensor: torch.Tensor, stream: Any) -> None:
            if mode != "no_wait":  # the control also skips record_stream
                tensor.record_stream(stream.real)

    return Variant()


@stage("prefetch_overlap", order=55, budget_s=45, min_s=15, owner=OWNER)
def prefetch_overlap(ctx: Context) -> dict:
    """ms per step of a ~6 ms GPU step fed by the prefetcher (per-batch event hand-over) vs the old
    wait_stream hand-over, with and without a per-step host sync, and data integrity under a busy
    consumer; a no-wait control shows that the integrity check can see a race."""
    from genimage_fast.loaders.batch import Batch
    from genimage_fast.loaders.prefetch import prefetch

    dev = ctx.device
    n, s, pool, steps = ctx.pick(256, 4), ctx.pick(224, 16), 4, ctx.pick(30, 3)
    g = torch.Generator().manual_seed(0)
    host = [torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=g) for _ in range(pool)]
    if dev.type == "cuda":
        host = [h.pin_memory() for h in host]
    sums = [h.sum(dim=(1, 2, 3), dtype=torch.int64) for h in host]
    a = torch.randn(ctx.pick(4096, 64), ctx.pick(4096, 64), device=dev)

    def compute(reps: int) -> None:
        for _ in range(reps):
            torch.mm(a, a)

    t = time_calls(lambda: compute(1), dev, warmup=2, iters=5)
    reps = max(1, round(6.0 / max(t["ms_median"], 1e-3))) if dev.type == "cuda" else 1

    def source(k: int) -> Iterator[Batch]:
        for i in range(k):
            lab = torch.full((n,), i, dtype=torch.int64)
            yield Batch(images=host[i % pool], labels=lab, generators=lab.clone(), class_ids=lab.clone(),
                        indices=lab.clone())

    def consume(mode: str, sync_each: bool, read_first: bool) -> dict[str, Any]:
        cuda = _variant(mode) if dev.type == "cuda" and mode != "event" else None
        for _ in prefetch(source(2), dev, cuda=cuda):
            compute(1)
        ctx.sync()
        checks = []
        t0 = time.perf_counter()
        for b in prefetch(source(steps), dev, cuda=cuda):
            if sync_each:  # what a host read in the step (the old augment's .item()) does
                ctx.sync()
            if read_first:
                checks.append((b.images.sum(dim=(1, 2, 3), dtype=torch.int64), b.labels[:1].clone()))
            compute(reps)
            if not read_first:
                checks.append((b.images.sum(dim=(1, 2, 3), dtype=torch.int64), b.labels[:1].clone()))
        ctx.sync()
        dt = (time.perf_counter() - t0) / steps
        bad = sum(int((c.cpu() != sums[int(lab.cpu()[0]) % pool]).sum()) for c, lab in checks)
        return {"ms_per_step": round(dt * 1e3, 3), "mismatched_samples": bad}

    rows = []
    resident = [h.to(dev) for h in host]
    ctx.sync()
    t0 = time.perf_counter()
    for i in range(steps):
        resident[i % pool].sum()
        compute(reps)
    ctx.sync()
    rows.append({"variant": "compute only, data resident", "ms_per_step": round((time.perf_counter() - t0) / steps
                                                                               * 1e3, 3), "mismatched_samples": 0})
    for mode, sync_each, read_first in (("event", False, False), ("event", True, False), ("event", False, True),
                                        ("wait_stream", False, False), ("wait_stream", True, False),
                                        ("no_wait", False, True)):
        if ctx.time_left() < 3:
            break
        label = f"{mode}{' + sync each step' if sync_each else ''}{' (read first)' if read_first else ''}"
        rows.append({"variant": label, **consume(mode, sync_each, read_first)})
    h2d = time_calls(lambda: host[0].to(dev, non_blocking=True), dev, warmup=2, iters=5)["ms_median"]
    real = [r for r in rows if not r["variant"].startswith("no_wait")]
    return {"batch_MB": round(host[0].numel() / 1e6, 1), "h2d_ms_per_batch": h2d, "compute_reps": reps,
            "intact": all(r["mismatched_samples"] == 0 for r in real), "rows": rows}


# ---------------------------------------------------------------------------------------------- engine step


@stage("engine_step_resnet50", order=60, budget_s=120, min_s=45, owner=OWNER)
def engine_step(ctx: Context) -> dict:
    """ResNet-50 bf16 channels_last training steps through `bench train`'s rows: synthetic (one batch
    resident), with the cpu backend (+ nvJPEG on CUDA) in the loop, and the loader alone; plain CE
    (no RandAugment/JSD/erasing), host syncs per step. Target: >= 5,000 img/s with the loader."""
    from genimage_fast.bench.train import bench_train

    batch = ctx.pick(256, 2)
    workers = ctx.pick(max(1, min(14, (os.cpu_count() or 2) - 2)), 0)
    overrides = (*PLAIN_CE, f"train.batch_size={batch}", "data.backend=cpu", f"data.num_workers={workers}",
                 "train.compile=false", *ctx.pick((), ("data.image_size=32",)))
    recipe = ctx.pick("resnet50", "demo")  # dry: the CPU demo model (bf16 ResNet-50 is slow on a CPU)
    rows, settings = bench_train(str(RECIPES / f"{recipe}.yaml"), str(records(ctx)), steps=ctx.pick(15, 1),
                                 warmup=ctx.pick(5, 1), overrides=overrides, device=str(ctx.device))
    return {"settings": settings,
            "rows": [{"name": m.name, "images": m.images, "seconds": round(m.seconds, 3),
                      "images_per_s": round(m.images_per_second, 1)} for m in rows]}


# ---------------------------------------------------------------------------------------------- nvJPEG


def _jpegs(ctx: Context, n: int) -> list[bytes]:
    """JPEGs (q90, 4:2:0) of real-photo crops at ImageNet-like sizes."""
    from PIL import Image

    from genimage_fast.bench.degrade import photo_batch

    sizes = ctx.pick((375, 500, 333, 448), (24, 40))
    out = []
    for i, size in enumerate(sizes):
        for img in photo_batch(-(-n // len(sizes)), size, seed=i):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
    return out[:n]


def _pil_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@stage("nvjpeg_decode", order=65, budget_s=60, min_s=20, owner=OWNER)
def nvjpeg_decode(ctx: Context) -> dict:
    """torchvision's batched nvJPEG (the cpu backend's GPU decode) vs PIL (libjpeg-turbo) on 1 and 16
    threads, plus decode + the loader's device box resize to 224; pixel difference nvJPEG vs PIL."""
    from torchvision.io import ImageReadMode, decode_jpeg

    from genimage_fast.loaders.gpu_decode import plan_resize, resize_on_device, upload_weights

    dev = ctx.device
    n, size = ctx.pick(256, 4), ctx.pick(224, 16)
    datas = _jpegs(ctx, n)
    tens = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    mpix = sum(_pil_decode(d).shape[0] * _pil_decode(d).shape[1] for d in datas[:8]) / 8 * n / 1e6

    def nvjpeg() -> list[torch.Tensor]:
        return list(decode_jpeg(tens, mode=ImageReadMode.RGB, device=dev))

    box = np.array([0.0, 0.0, 1.0, 1.0])

    def nvjpeg_resized() -> torch.Tensor:
        imgs = nvjpeg()
        plans = [plan_resize(int(i.shape[1]), int(i.shape[2]), box, size, False) for i in imgs]
        return torch.stack([resize_on_device(i, p, wy, wx)
                            for i, p, (wy, wx) in zip(imgs, plans, upload_weights(plans, dev), strict=True)])

    def rate(fn: Callable[[], object], count: int, iters: int) -> dict[str, Any]:
        t = time_calls(fn, dev, warmup=ctx.pick(3, 1), iters=iters, max_s=max(2.0, ctx.time_left() / 8))
        return {"ms_per_call": t["wall_ms"], "images_per_s": round(count / t["wall_ms"] * 1e3),
                "MPix_per_s": round(mpix * count / n / t["wall_ms"] * 1e3, 1)}

    threads = ctx.pick(16, 2)
    rows = [{"path": f"nvjpeg batched ({'cuda' if dev.type == 'cuda' else 'cpu stand-in'})", **rate(nvjpeg, n, 10)},
            {"path": f"nvjpeg + device box resize to {size}", **rate(nvjpeg_resized, n, 5)}]
    few = datas[:max(1, n // 4)]
    rows.append({"path": "PIL decode, 1 thread", **rate(lambda: [_pil_decode(d) for d in few], len(few), 2)})
    with ThreadPoolExecutor(threads) as ex:
        rows.append({"path": f"PIL decode, {threads} threads",
                     **rate(lambda: list(ex.map(_pil_decode, datas)), n, 3)})
    got = nvjpeg()[:8]
    diffs = [np.abs(g.permute(1, 2, 0).cpu().numpy().astype(int) - _pil_decode(d).astype(int))
             for g, d in zip(got, datas[:8], strict=True)]
    return {"images": n, "megapixels_per_batch": round(mpix, 1),
            "nvjpeg_vs_pil": {"mean_abs": round(float(np.mean([d.mean() for d in diffs])), 4),
                              "max_abs": int(max(d.max() for d in diffs))},
            "rows": rows}


# ---------------------------------------------------------------------------------------------- compile


@stage("compile_gain", order=90, budget_s=170, min_s=110, owner=OWNER)
def compile_gain(ctx: Context) -> dict:
    """Engine steps of ResNet-50 bf16 channels_last bs 256 on one resident batch, eager vs
    torch.compile: the first (compiling) step apart, then steady-state img/s. Dry run: eager only
    (inductor's C++ build takes minutes on a CPU)."""
    recipe = ctx.pick("resnet50", "demo")
    overrides = (*PLAIN_CE, f"train.batch_size={ctx.pick(256, 2)}", "data.backend=cpu", "data.num_workers=0",
                 *ctx.pick((), ("data.image_size=32",)))
    rows = []
    for compiled in ctx.pick((False, True), (False,)):
        if compiled and ctx.time_left() < 90:
            rows.append({"compiled": True, "status": "skipped: time"})
            continue
        t = trainer(ctx, recipe, (*overrides, f"train.compile={str(compiled).lower()}"))
        batch = next(iter(t.loader)).to(ctx.device)
        ctx.sync()
        t0 = time.perf_counter()
        t.train_step([batch])
        ctx.sync()
        first = time.perf_counter() - t0
        timing = time_calls(lambda t=t, b=batch: t.train_step([b]), ctx.device, warmup=ctx.pick(3, 0),
                            iters=ctx.pick(15, 2), max_s=max(3.0, ctx.time_left() / 3))
        rows.append({"compiled": compiled, "first_step_s": round(first, 2), "ms_per_step": timing["ms_median"],
                     "images_per_s": round(len(batch) / timing["ms_median"] * 1e3, 1)})
    done = [r for r in rows if "images_per_s" in r]
    gain = done[1]["images_per_s"] / done[0]["images_per_s"] if len(done) == 2 else None
    return {"compile_gain": round(gain, 3) if gain else None, "rows": rows}
