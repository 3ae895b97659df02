"""DALI backend: a DALI pipeline decodes and crops the samples of the webdataset shards.

Samples enter through `fn.external_source` in the planner's order (bytes read from the shards via
their DALI/wds2idx index and a memory map), with one ROI per sample; the pipeline is
`fn.decoders.image` (device="mixed": nvJPEG on the GPU, PNG falls back to DALI's host decoder;
"cpu" without a GPU, `device_id=None`) -> `fn.resize` of the ROI to image_size² (antialiased
linear, the resampler the other backends use; a reversed x range in the ROI is the horizontal
flip) -> CHW. `raw` stores skip the decoder.

Why not `fn.readers.webdataset`: its order is its own shuffle buffer, it cannot filter by
generator, cannot make DDP ranks equal and disjoint the way the planner does, nor resume at a batch;
feeding the planner's order keeps every backend's batches identical and resume exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.base import LOADERS, Loader
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


def build_pipeline(batch_size: int, image_size: int, threads: int, device_id: int | None, raw: bool):
    """The DALI pipeline: (encoded bytes | raw HWC, roi_start, roi_end) -> uint8 [3, S, S]."""
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

    @staticmethod
    def missing() -> str | None:
        return _dali_missing()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._raw = self.records.store == "raw"
        self._pipe = None  # built on first use

    def _pipeline(self):
        if self._pipe is None:
            device_id = self.device.index if self.device.type == "cuda" else None
            self._pipe = build_pipeline(self.planner.batch_size, self.image_size, self.num_workers,
                                        device_id, self._raw)
        return self._pipe

    def _read(self, plan: BatchPlan) -> list[np.ndarray]:
        samples = []
        for index in plan.indices:
            try:
                kind, payload = self.split.read_encoded(int(index))
            except Exception as err:
                raise GenImageError(f"{self.locate(int(index))}: cannot read sample {int(index)}: "
                                    f"{type(err).__name__}: {err}") from err
            samples.append(np.ascontiguousarray(payload) if kind == "raw" else np.frombuffer(payload, dtype=np.uint8))
        return samples

    def _run(self, plan: BatchPlan) -> torch.Tensor:
        pipe = self._pipeline()
        start, end = roi(plan)
        pipe.feed_input("data", self._read(plan))
        pipe.feed_input("roi_start", start)
        pipe.feed_input("roi_end", end)
        try:
            (out,) = pipe.run()
        except Exception as err:
            files = sorted({self.locate(int(i)) for i in plan.indices})
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise GenImageError(f"{', '.join(files)}: DALI cannot decode a sample of this batch: {first}") from err
        return _to_torch(out.as_tensor(), self.device)

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
