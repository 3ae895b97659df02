"""gpu-check stage for source-space evaluation on the device (issue #12, loaders/device_eval.py).

With device="cuda" the cpu backend decodes each test image at full size (nvJPEG for the JPEG reals,
the workers for the PNG fakes), runs the Task 2 spec with our kernels and then the detector's eval
transform on the device. This stage checks those pixels against an independent pipeline written
here (PIL decode -> PIL / scipy degrade -> torchvision transform) and times the device path against
the host path (the same work in DataLoader workers with PIL / scipy) and the crop-space path (the
undegraded eval loader, then the spec on the model-size crop as `eval --degrade-at crop` does), over
the demo records of train.records() (made here when this stage runs first).

Dry run (CPU): the device path is forced the way tests/test_device_eval.py's `forced` fixture does
(torchvision's CPU libjpeg-turbo decode stands in for nvJPEG, the kernels' CPU references run), on a
few images with a few specs: the plumbing only, its figures mean nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from genimage_fast.bench.gpucheck.runner import Context, stage

OWNER = "gpu-kernels"
SIZE, RESIZE = 224, 256  # the eval crop; resize_centre's short side (SIZE / 0.875)
TASK2 = ("lr:112", "lr:64", "jpeg:65", "jpeg:30", "blur:3", "blur:5")
TRANSFORMS = ("cnndetection", "resize_centre")
SPEED_SPECS = ("blur:3", "jpeg:30")
PATHS = ("device", "host", "crop")  # source-space on the device / in the workers; crop-space (box path)
FORMAT_JPEG, FORMAT_PNG = 0, 1  # records' source_format (records/imageio.py)
# Bounds (levels): no resample after a JPEG / blur spec under cnndetection, so PNG fakes come out exact;
# Pillow's fixed-point resample rebuilt on the device elsewhere; nvJPEG's IDCT rounds unlike libjpeg-turbo.
RESAMPLE_MEAN, RESAMPLE_MAX, NVJPEG_MEAN = 0.5, 2, 1.0
SPEED_RESERVE_S = 40  # of the GPU box, left to the speed part (48 passes of 256 images: ~25 s estimated)


# ---------------------------------------------------------------------------------------------- paths


def _cpu_decode(datas: list[torch.Tensor]) -> list[torch.Tensor]:
    """nvJPEG's stand-in in the dry run: torchvision's batched CPU decode (libjpeg-turbo, PIL's pixels)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    return list(decode_jpeg(datas, mode=ImageReadMode.RGB))


@contextlib.contextmanager
def _patched(changes: Sequence[tuple[object, str, object]]) -> Iterator[None]:
    """setattr(obj, name, value) for each change while the block runs, then the originals back."""
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in changes]
    try:
        for obj, name, value in changes:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def _path(ctx: Context, path: str) -> contextlib.AbstractContextManager[None]:
    """Where the loaders built in the block run the degrade + eval transform. host: the workers
    (_loader asks for pipeline_on="host"); device / crop on the CPU: the device path forced, nvJPEG stood in."""
    from genimage_fast.loaders import device_eval, gpu_decode

    if path == "host" or ctx.device.type == "cuda":
        return contextlib.nullcontext()
    return _patched([(device_eval, "applies", lambda loader: loader.pipeline is not None),
                     (gpu_decode, "nvjpeg_missing", lambda device="cuda": None),
                     (gpu_decode, "nvjpeg_decoder", lambda device: _cpu_decode)])


def _loader(ctx: Context, records: Any, path: str, spec: str, transform: str, batch: int, workers: int,
            subset: np.ndarray | None = None) -> Any:
    """The cpu backend's eval loader (built inside _path(ctx, path)); crop: undegraded, the spec comes after."""
    from genimage_fast.loaders import build_loader

    loader = build_loader(records, backend="cpu", batch_size=batch, train=False, image_size=SIZE,
                          num_workers=workers, degrade=None if path == "crop" else spec, subset=subset,
                          eval_transform=transform, device=str(ctx.device), drop_last=False,
                          pipeline_on="host" if path == "host" else "auto")
    want = {"device": "device", "host": "host"}.get(path)
    if want is not None and loader.pipeline_on != want:  # measuring the wrong path is worse than failing
        raise RuntimeError(f"{path} path, {spec} / {transform}: the loader runs its pipeline on "
                           f"{loader.pipeline_on!r}")
    return loader


# ---------------------------------------------------------------------------------------------- reference


def _pil(payload: bytes) -> Any:
    from PIL import Image

    with Image.open(io.BytesIO(payload)) as image:
        return image.convert("RGB")


def _reference(payload: bytes, spec: str, transform: str) -> np.ndarray:
    """PIL decode -> the spec on the full image as AIGCDetectBenchmark / CNNDetection call PIL and scipy
    -> the eval transform as torchvision (CenterCrop; Resize(256, antialias) + CenterCrop) does it."""
    import torchvision.transforms.v2.functional as TF
    from PIL import Image
    from torchvision import transforms

    image = _pil(payload)
    name, _, value = spec.partition(":")
    if name == "lr":
        image = image.resize((int(value), int(value)), Image.BILINEAR)
    elif name == "jpeg":  # PIL's default save: 4:2:0 chroma
        buf = io.BytesIO()
        image.save(buf, format="jpeg", quality=int(value))
        image = _pil(buf.getvalue())
    elif name == "blur":
        from scipy.ndimage import gaussian_filter

        s = float(value)  # on the uint8 array: scipy truncates to uint8 after each pass
        image = Image.fromarray(gaussian_filter(np.asarray(image), sigma=(s, s, 0)))
    if transform == "cnndetection":
        return np.asarray(transforms.CenterCrop(SIZE)(image))
    chw = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    return TF.center_crop(TF.resize(chw, RESIZE, antialias=True), [SIZE, SIZE]).permute(1, 2, 0).numpy()


def _fidelity_subset(meta: dict[str, Any], more: bool) -> np.ndarray:
    """Reals of several shapes (landscape / portrait, small / not) and a 512² PNG fake; more (the GPU
    run): up to 8 reals of distinct sizes and a fake of every size (128² .. 1024²)."""
    fmt, width, height = (np.asarray(meta[k]) for k in ("source_format", "width", "height"))
    reals = np.flatnonzero(fmt == FORMAT_JPEG)
    by_shape: dict[tuple[bool, bool], int] = {}
    for i in reals:
        by_shape.setdefault((bool(width[i] > height[i]), bool(min(width[i], height[i]) < 200)), int(i))
    picked = set(by_shape.values())
    if more:
        for i in reals:
            if len(picked) >= 8:
                break
            if all((width[i], height[i]) != (width[j], height[j]) for j in picked):
                picked.add(int(i))
    sides = sorted({int(w) for w in width[fmt == FORMAT_PNG]}) if more else [512]
    for side in sides:
        fakes = np.flatnonzero((fmt == FORMAT_PNG) & (width == side))
        if len(fakes):
            picked.add(int(fakes[0]))
    return np.array(sorted(picked), dtype=np.int64)


def _bounds(kind: str, spec: str, transform: str, libjpeg: bool) -> tuple[float, float | None]:
    """(worst per-image mean, max) levels allowed; max None: not bounded. libjpeg: the reals were decoded
    by libjpeg-turbo (the dry run's stand-in, or no nvJPEG), so they get the fakes' bounds."""
    if kind == "real" and not libjpeg:
        return NVJPEG_MEAN, None
    if transform == "cnndetection" and spec.partition(":")[0] in ("none", "jpeg", "blur"):
        return 0.0, 0
    return RESAMPLE_MEAN, RESAMPLE_MAX


def _images(loader: Any, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    batches = list(loader)
    ctx.sync()
    images = torch.cat([b.images.cpu() for b in batches]).permute(0, 2, 3, 1).numpy()
    return images, torch.cat([b.indices.cpu() for b in batches]).numpy()


def _fidelity(ctx: Context, records: Any, rs: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    split = rs.split("val")
    subset = _fidelity_subset(split.meta, more=not ctx.dry)
    fmt = np.asarray(split.meta["source_format"])
    stand_in = ctx.device.type != "cuda"  # the CPU decode stands in for nvJPEG: libjpeg-turbo, PIL's pixels
    payloads = {int(i): bytes(split.read_encoded(int(i))[1]) for i in subset}
    specs = ctx.pick(TASK2, ("lr:64", "jpeg:30", "blur:3"))
    rows = []
    for transform in TRANSFORMS:
        # "none" under cnndetection: the decode alone (resize_centre without a spec is the box path)
        for spec in (("none",) if transform == "cnndetection" else ()) + tuple(specs):
            if ctx.time_left() < ctx.pick(SPEED_RESERVE_S, 5):  # the speed part keeps its share of the box
                rows.append({"transform": transform, "spec": spec, "kind": "-", "status": "skipped: time"})
                continue
            with _path(ctx, "device"):
                loader = _loader(ctx, records, "device", spec, transform, batch=4, workers=0, subset=subset)
                got, indices = _images(loader, ctx)
            if indices.tolist() != subset.tolist():
                raise RuntimeError(f"device path, {spec} / {transform}: batches came back as {indices.tolist()}")
            diffs: dict[str, list[np.ndarray]] = {"real": [], "fake": []}
            for j, index in enumerate(indices):
                ref = _reference(payloads[int(index)], spec, transform)
                kind = "real" if fmt[index] == FORMAT_JPEG else "fake"
                diffs[kind].append(np.abs(got[j].astype(np.int16) - ref.astype(np.int16)))
            for kind, ds in diffs.items():
                if not ds:
                    continue
                mean_bound, max_bound = _bounds(kind, spec, transform, loader.decoder != "nvjpeg" or stand_in)
                worst = max(float(d.mean()) for d in ds)
                peak = max(int(d.max()) for d in ds)
                ok = worst <= mean_bound and (max_bound is None or peak <= max_bound)
                rows.append({"transform": transform, "spec": spec, "kind": kind, "images": len(ds),
                             "decoder": loader.decoder if kind == "real" else "host",
                             "mean_abs": round(float(np.mean([d.mean() for d in ds])), 4),
                             "worst_image_mean": round(worst, 4), "max_abs": peak,
                             "bound": f"mean <= {mean_bound}" + (f", max <= {max_bound}" if max_bound is not None
                                                                  else ""), "ok": ok})
    checked = [r for r in rows if "ok" in r]
    summary = {"images": {"real": int((fmt[subset] == FORMAT_JPEG).sum()), "fake": int((fmt[subset] != FORMAT_JPEG)
                                                                                      .sum())},
               "sizes": sorted({f"{split.meta['width'][i]}x{split.meta['height'][i]}" for i in subset}),
               "decoder_reals": ("cpu stand-in (libjpeg-turbo)" if stand_in else
                                 sorted({r["decoder"] for r in checked if r["kind"] == "real"})),
               "ok": bool(checked) and all(r["ok"] for r in checked),
               "failed": [f"{r['transform']} {r['spec']} {r['kind']}" for r in checked if not r["ok"]]}
    return rows, summary


# ---------------------------------------------------------------------------------------------- speed


def _pass(ctx: Context, loader: Any, crop_spec: str | None, keep: bool) -> dict[str, Any]:
    """One full iteration, each batch on the device (crop: the spec on it there), then a device sync.
    first_s: the first batch (the workers' start-up and the pipeline's fill); keep: the pixels back."""
    from genimage_fast.engine.evaluate import degrade_batch

    ctx.sync()
    t0 = time.perf_counter()
    first_s, first_n, n, kept = 0.0, 0, 0, []
    for batch in loader:
        x = batch.images.to(ctx.device, non_blocking=True)
        if crop_spec is not None:
            x = degrade_batch(x, crop_spec, SIZE)
        n += int(x.shape[0])
        if keep:
            kept.append((x.cpu(), batch.indices.cpu()))
        if not first_n:
            ctx.sync()
            first_s, first_n = time.perf_counter() - t0, n
    ctx.sync()
    res: dict[str, Any] = {"images": n, "seconds": time.perf_counter() - t0, "first_s": first_s, "first_n": first_n}
    if keep:
        res["pixels"] = torch.cat([k[0] for k in kept])
        res["indices"] = torch.cat([k[1] for k in kept])
    return res


def _speed(ctx: Context, records: Any, rs: Any) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Rows per (spec, transform, path), the settings, and device / host img/s per (spec, transform)."""
    meta = rs.split("val").meta
    # dry: a few small images (the CPU stand-ins of the kernels are slow on 1024² fakes)
    subset = None if not ctx.dry else np.flatnonzero(np.maximum(np.asarray(meta["width"]),
                                                                np.asarray(meta["height"])) <= 320)[:4]
    batch = ctx.pick(16, 2)  # the demo split is small: enough batches to keep every worker busy
    workers = ctx.pick(max(1, min(14, (os.cpu_count() or 2) - 2)), 0)
    passes = ctx.pick(3, 1)
    rows, ratios = [], {}
    for spec in ctx.pick(SPEED_SPECS, SPEED_SPECS[1:]):
        for transform in TRANSFORMS:
            rates, outs = {}, {}
            for path in PATHS:
                row: dict[str, Any] = {"spec": spec, "transform": transform, "path": path}
                if ctx.time_left() < ctx.pick(6, 0.5):
                    rows.append({**row, "img_per_s": "skipped (time)"})
                    continue
                with _path(ctx, path):
                    loader = _loader(ctx, records, path, spec, transform, batch, workers, subset)
                    warm = _pass(ctx, loader, spec if path == "crop" else None, keep=True)  # JIT, caches
                    outs[path] = warm
                    timed = []
                    for _ in range(passes):
                        timed.append(_pass(ctx, loader, spec if path == "crop" else None, keep=False))
                        if ctx.time_left() < ctx.pick(4, 0.2):
                            break
                images, seconds = sum(t["images"] for t in timed), sum(t["seconds"] for t in timed)
                steady_n = images - sum(t["first_n"] for t in timed)
                steady_s = seconds - sum(t["first_s"] for t in timed)
                rates[path] = images / seconds
                rows.append({**row, "pipeline_on": loader.pipeline_on, "decoder": loader.decoder,
                             "passes": len(timed), "images": images, "seconds": round(seconds, 3),
                             "img_per_s": round(images / seconds, 1),
                             "steady_img_per_s": round(steady_n / steady_s, 1) if steady_n and steady_s > 0 else None,
                             "first_batch_s": round(float(np.mean([t["first_s"] for t in timed])), 3)})
            ratio: dict[str, Any] = {}
            if "device" in rates and "host" in rates:
                ratio["device_vs_host"] = round(rates["device"] / rates["host"], 2)
                if torch.equal(outs["device"]["indices"], outs["host"]["indices"]):  # same batches out
                    d = (outs["device"]["pixels"].to(torch.int16) - outs["host"]["pixels"].to(torch.int16)).abs()
                    ratio.update(vs_host_mean_abs=round(float(d.float().mean()), 4), vs_host_max_abs=int(d.max()))
                else:
                    ratio["vs_host_mean_abs"] = "different order"
            if "device" in rates and "crop" in rates:
                ratio["device_vs_crop"] = round(rates["device"] / rates["crop"], 2)
            if ratio:
                next(r for r in rows[::-1] if r["path"] == "device" and r["spec"] == spec
                     and r["transform"] == transform).update(ratio)
                ratios[f"{spec} / {transform}"] = ratio.get("device_vs_host")
    images = len(meta["label"]) if subset is None else len(subset)
    note = ("a small split: worker start-up and the longest batch weigh more than over a full one; "
            "steady_img_per_s leaves out each pass's first batch")
    return rows, {"note": note, "images_per_pass": images, "batch_size": batch, "num_workers": workers,
                  "timed_passes": passes}, ratios


@stage("device_eval", order=45, budget_s=90, min_s=30, owner=OWNER)
def device_eval_stage(ctx: Context) -> dict:
    """Source-space Task 2 on the device (nvJPEG + Triton + device eval transforms) vs an independent
    PIL / scipy / torchvision pipeline on demo val images (reals apart: nvJPEG), then eval img/s of the
    device path vs the host workers vs crop-space, over the demo val split."""
    from genimage_fast.bench.gpucheck.train import records as demo_records
    from genimage_fast.records import open_records

    t0 = time.monotonic()
    records = demo_records(ctx)
    rs = open_records(records)
    made_s = time.monotonic() - t0
    if rs.manifest.get("store") != "original":  # the reference decodes the stored bytes as the source files
        raise RuntimeError(f"the demo records store {rs.manifest.get('store')!r}, not the original files")
    fidelity_rows, fidelity = _fidelity(ctx, records, rs)
    speed_rows, speed, ratios = _speed(ctx, records, rs)
    rows = [{"part": "fidelity", **r} for r in fidelity_rows] + [{"part": "speed", **r} for r in speed_rows]
    return {"records_s": round(made_s, 2), "fidelity_ok": fidelity.pop("ok"), "fidelity_failed": fidelity.pop("failed"),
            "fidelity": fidelity, "device_vs_host": ratios, "speed": speed, "rows": rows}
