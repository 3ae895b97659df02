"""The fallback every machine can run: torch DataLoader workers decode whole batches from the records.

Each worker gets a BatchPlan (not single indices), reads the samples through the records reader
(`RecordSplit.read_encoded`, so it works for webdataset shards and .beton files alike) and decodes
each one at full size (decode.decode_sample: libjpeg-turbo for JPEG, OpenCV/PIL for PNG, raw pixels
as stored) into its crop box, or through the loader's full-image pipeline (degrade + the detector's
transform). One task per batch keeps the inter-process traffic to one tensor per batch.

Images come out as [N,3,S,S] views of NHWC memory (channels_last strides): a model in channels_last
consumes them without a copy; `.contiguous()` gives the NCHW layout when something needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genimage_fast.errors import GenImageError
from genimage_fast.loaders import device_eval, gpu_decode
from genimage_fast.loaders.base import DEVICE, LOADERS, Loader, locate_file
from genimage_fast.loaders.decode import decode_sample
from genimage_fast.loaders.plan import BatchPlan


class BatchDecoder(Dataset):
    """Item b = the decoded images of plan b; opens the records once per process (fork-safe)."""

    def __init__(self, records, split: str, plans: list[BatchPlan], image_size: int, pipeline=None,
                 fast_jpeg: bool = False) -> None:
        self.records = records
        self.split_name = split
        self.plans = plans
        self.image_size = image_size
        self.pipeline = pipeline
        self.fast_jpeg = fast_jpeg
        self._opened: tuple[int, object] | None = None  # (pid, RecordSplit)

    def _split(self):
        # A forked worker must not share the parent's open file offsets: reopen per process.
        if self._opened is None or self._opened[0] != os.getpid():
            from genimage_fast.records import open_records

            self._opened = (os.getpid(), open_records(self.records.root).split(self.split_name))
        return self._opened[1]

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, b: int) -> torch.Tensor:
        plan = self.plans[b]
        split = self._split()
        size = self.image_size
        out = np.empty((len(plan), size, size, 3), dtype=np.uint8)
        for j, index in enumerate(plan.indices):
            try:
                kind, payload = split.read_encoded(int(index))
                out[j] = decode_sample(kind, payload, plan.boxes[j], size, bool(plan.flips[j]), self.pipeline,
                                       int(index), plan.epoch, self.fast_jpeg)
            except GenImageError:
                raise
            except Exception as err:  # a damaged record: name the file it sits in
                where = locate_file(self.records, self.split_name, int(index))
                raise GenImageError(f"{where}: cannot read sample {int(index)}: {type(err).__name__}: {err}") from err
        return torch.from_numpy(out).permute(0, 3, 1, 2)


@LOADERS.register("cpu")
class CpuLoader(Loader):
    name = "cpu"
    formats = ("dali", "ffcv")

    @staticmethod
    def missing() -> str | None:
        return None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # device="cuda": JPEGs decode on the GPU (issue #17), an eval pipeline runs there (issue #12)
        self._nvjpeg = not self.host_only and gpu_decode.applies(self)
        self._device_eval: device_eval.DeviceEval | None = None
        if self._nvjpeg:
            self.decoder, self.pipeline_on = gpu_decode.NVJPEG, DEVICE
        elif not self.host_only and device_eval.applies(self):
            decode = device_eval.nvjpeg_for(self.device)
            self._device_eval = device_eval.DeviceEval(self.pipeline, self.device, decode)
            self.pipeline_on = DEVICE
            if decode is not None:
                self.decoder = gpu_decode.NVJPEG

    def _images(self, plans: list[BatchPlan]) -> Iterator[torch.Tensor]:
        dataset = BatchDecoder(self.records, self.split_name, plans, self.image_size, self.pipeline, self.fast_jpeg)
        if self._nvjpeg:
            yield from gpu_decode.images(self, plans, dataset)
            return
        if self._device_eval is not None:
            yield from device_eval.images(self, plans, dataset, self._device_eval)
            return
        workers = min(self.num_workers, len(plans))
        loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                            pin_memory=self.device.type == "cuda",
                            prefetch_factor=4 if workers else None,
                            # each iterator draws a base seed; from its own generator, not the global
                            # RNG that dropout uses (the plans are deterministic, the draw unused)
                            generator=torch.Generator())
        yield from loader
