"""DALI backend: a DALI pipeline decodes and crops the samples of the webdataset shards.

Samples enter through `fn.external_source` in the planner's order (bytes read from the shards via
their DALI/wds2idx index and a memory map), with one ROI per sample; the pipeline is
`fn.decoders.image` (device="mixed": nvJPEG on the GPU, PNG falls back to DALI's host decoder;
"cpu" without a GPU, `device_id=None`) -> `fn.resize` of the ROI to image_size² (antialiased
linear, the resampler the other backends use; a reversed x range in the ROI is the horizontal
flip) -> CHW. `raw` stores skip the decoder.

Full-image pipelines (a detector's eval transform, Task 2's source-space degradation, a train
transform of the originals) run on the host after DALI's full-size decode: the DALI pipeline then only
decodes (`fn.decoders.image`; its CPU decoder is bit-identical to PIL), and each decoded image goes
through the loader's SamplePipeline in a thread pool. DALI always decodes at full size, so
`fast_jpeg_decode` is refused for this backend (build_loader says so in one line).

Why not `fn.readers.webdataset`: its order is its own shuffle buffer, it cannot filter by
generator, cannot make DDP ranks equal and disjoint the way the planner does, nor resume at a batch;
feeding the planner's order keeps every backend's batches identical and resume exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from genimage_fast.errors import GenImageError
from genimage_fast.loaders import device_eval
from genimage_fast.loaders.base import DEVICE, LOADERS, Loader
from genimage_fast.loaders.decode import decode_full
from genimage_fast.loaders.gpu_decode import NVJPEG
from genimage_fast.loaders.plan import BatchPlan


def _dali_missing() -> str | None:
    try:
        import nvidia.dali  # noqa: F401
    except Exception as err:
        return f"nvidia-dali does not import ({type(err).__name__}: {err}); pip install nvidia-dali-cuda120"
    return None


def roi(plan: BatchPlan) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """DALI ROIs in (y, x) order, relative; a flip swaps the x ends (DALI flips a reversed ROI)."""
    x0, y0, x1, y1 = (plan.boxes[:, k].astype(np.float32) for k in range(4))
    x0, x1 = np.where(plan.flips, x1, x0), np.where(plan.flips, x0, x1)
    start = np.stack([y0, x0], axis=1)
    end = np.stack([y1, x1], axis=1)
    return list(start), list(end)


def build_pipeline(batch_size: int, image_size: int, threads: int, device_id: int | None, raw: bool,
                   decode_only: bool = False):
    """The DALI pipeline: (encoded bytes | raw HWC, roi_start, roi_end) -> uint8 [3, S, S]; with
    decode_only, encoded bytes -> the full-size decoded HWC image (variable sizes)."""
    from nvidia.dali import fn, pipeline_def, types

    gpu = device_id is not None

    @pipeline_def(batch_size=batch_size, num_threads=max(1, threads), device_id=device_id,
                  exec_dynamic=True, prefetch_queue_depth=1)
    def pipeline():
        data = fn.external_source(name="data", dtype=types.UINT8, layout="HWC" if raw else None)
        start = fn.external_source(name="roi_start", dtype=types.FLOAT)
        end = fn.external_source(name="roi_end", dtype=types.FLOAT)
        if raw:
            images = data.gpu() if gpu else data
        else:
            images = fn.decoders.image(data, device="mixed" if gpu else "cpu", output_type=types.RGB)
        if decode_only:
            return images
        images = fn.resize(images, size=[image_size, image_size], roi_start=start, roi_end=end,
                           roi_relative=True, interp_type=types.INTERP_LINEAR, antialias=True)
        return fn.transpose(images, perm=[2, 0, 1])

    pipe = pipeline()
    pipe.build()
    return pipe


@LOADERS.register("dali")
class DaliLoader(Loader):
    name = "dali"
    formats = ("dali",)
    supports_fast_jpeg = False  # DALI decodes at full size only

    @staticmethod
    def missing() -> str | None:
        return _dali_missing()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # lossless: decoded on the host (zstd + numba, GIL released, in threads), fed as raw HWC
        self._raw = self.records.store in ("raw", "lossless")
        self._host_decode = ThreadPoolExecutor(max(1, self.num_workers), thread_name_prefix="dali-lossless") \
            if self.records.store == "lossless" else None
        self._pipe = None  # built on first use
        self._pool: ThreadPoolExecutor | None = None  # host threads for the full-image pipeline
        # A full-image pipeline runs on the host, so its images are decoded there too (DALI's CPU decoder:
        # PIL's pixels); only the box path on a GPU uses nvJPEG, and says so.
        self._gpu_decode = self.device.type == "cuda" and self.pipeline is None and not self.host_only
        if self._gpu_decode and not self._raw:
            self.decoder = NVJPEG
        if self._gpu_decode:
            self.pipeline_on = DEVICE  # DALI's GPU resize
        # device="cuda" with an eval pipeline: DALI's CPU decode (PIL's pixels), then the degradation and
        # the eval transform on the device (issue #12), as the cpu backend does
        self._device_eval: device_eval.DeviceEval | None = None
        if not self.host_only and device_eval.applies(self):
            self._device_eval = device_eval.DeviceEval(self.pipeline, self.device, None)
            self.pipeline_on = DEVICE

    def _pipeline(self):
        if self._pipe is None:
            device_id = self.device.index if self._gpu_decode else None
            self._pipe = build_pipeline(self.planner.batch_size, self.image_size, self.num_workers,
                                        device_id, self._raw, decode_only=self.pipeline is not None)
        return self._pipe

    def _read_one(self, index: int) -> np.ndarray:
        try:
            kind, payload = self.split.read_encoded(index)
            if kind == "lossless":
                kind, payload = "raw", decode_full(kind, payload)
        except Exception as err:
            raise GenImageError(f"{self.locate(index)}: cannot read sample {index}: "
                                f"{type(err).__name__}: {err}") from err
        return np.ascontiguousarray(payload) if kind == "raw" else np.frombuffer(payload, dtype=np.uint8)

    def _read(self, plan: BatchPlan) -> list[np.ndarray]:
        indices = [int(i) for i in plan.indices]
        if self._host_decode is not None:
            return list(self._host_decode.map(self._read_one, indices))
        return [self._read_one(i) for i in indices]

    def _run(self, plan: BatchPlan) -> torch.Tensor:
        pipe = self._pipeline()
        pipe.feed_input("data", self._read(plan))
        if self.pipeline is None:  # the decode-only pipeline has no ROI inputs (DALI prunes them)
            start, end = roi(plan)
            pipe.feed_input("roi_start", start)
            pipe.feed_input("roi_end", end)
        try:
            (out,) = pipe.run()
        except Exception as err:
            files = sorted({self.locate(int(i)) for i in plan.indices})
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise GenImageError(f"{', '.join(files)}: DALI cannot decode a sample of this batch: {first}") from err
        if self.pipeline is not None:
            return self._transform_on_host(out, plan)
        return _to_torch(out.as_tensor(), self.device)

    def _transform_on_host(self, decoded, plan: BatchPlan) -> torch.Tensor:
        """Full-size DALI decodes -> the SamplePipeline per sample (host threads) -> uint8 [n, 3, S, S];
        on CUDA with a device twin, the degradation + eval transform run there instead (device_eval.py)."""
        if hasattr(decoded, "as_cpu"):  # mixed / GPU decode: the host transform needs host pixels
            decoded = decoded.as_cpu()
        if self._device_eval is not None:
            images = [np.array(decoded.at(j)) for j in range(len(plan))]
            part = device_eval.pack(images, [int(i) for i in plan.indices], self.pipeline.centre)
            return self._device_eval(part.pin_memory() if self.device.type == "cuda" else part, plan)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(1, self.num_workers), thread_name_prefix="dali-host")
        size = self.image_size
        out = np.empty((len(plan), size, size, 3), dtype=np.uint8)

        def one(j: int) -> None:
            out[j] = self.pipeline(np.array(decoded.at(j)), int(plan.indices[j]), plan.epoch)

        list(self._pool.map(one, range(len(plan))))
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def _images(self, plans: list[BatchPlan]) -> Iterator[torch.Tensor]:
        for plan in plans:
            yield self._run(plan)


def _to_torch(tensor, device: torch.device) -> torch.Tensor:
    """A DALI TensorCPU/TensorGPU as a torch uint8 tensor (copied: DALI reuses its buffers)."""
    if device.type != "cuda":
        return torch.from_numpy(np.array(tensor))
    from nvidia.dali.plugin.pytorch import feed_ndarray

    out = torch.empty(tuple(tensor.shape()), dtype=torch.uint8, device=device)
    feed_ndarray(tensor, out, cuda_stream=torch.cuda.current_stream(device))
    return out
