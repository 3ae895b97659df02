"""Source-space evaluation on CUDA (issue #12): degrade and apply the eval transform on the device.

`eval --degrade-at source` (and `build_loader(train=False, degrade=SPEC, eval_transform=NAME)`) must
degrade the full decoded test image, then apply the detector's eval transform. On the host that is
PIL / scipy per image in the workers (pipelines.SamplePipeline): several times a crop-space pass
(benchmarks/RESULTS.md).
With device="cuda" the cpu backend splits the work instead:

- workers read each batch's samples; 8-bit colour JPEGs (GenImage's reals) go on as undecoded bytes
  for nvJPEG (`gpu_decode.route`, when torchvision has it), everything else is decoded at full size
  on the host (decode.decode_full: libjpeg-turbo / libpng), cropped to the records' protocol side
  (Grommelt et al.), and packed into one pinned buffer per batch;
- the main process uploads that buffer in one copy, decodes the JPEGs with one batched nvJPEG call,
  applies the protocol crop to them, groups the images by size (GenImage's fakes come in a few sizes,
  reals vary), and runs the spec and then the eval transform per group on the device:
  `SOURCE_DEGRADATIONS` (the host twin is pipelines.degrade_image) then DEVICE_EVAL_TRANSFORMS.

The dali backend feeds the same device stage from DALI's CPU decode (`pack`); ffcv keeps the host path.

Same pixels as the host path within the kernels' stated bounds: JPEG (Triton, libjpeg-turbo's islow
DCT) and the uint8-truncating blur are bit-exact vs PIL / scipy; `lr:S` is Pillow's bilinear squash
rebuilt in fixed point (device_transforms.pil_resize: exact per pass, the pass order as measured);
nvJPEG's IDCT rounds differently from libjpeg-turbo (<= 1 level mean), so the loader records its
decoder as "nvjpeg" - the same decoder as the crop-space and undegraded columns on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from genimage_fast.errors import GenImageError
from genimage_fast.kernels.runtime import upload
from genimage_fast.loaders import gpu_decode
from genimage_fast.loaders.decode import decode_full
from genimage_fast.loaders.device_transforms import DEVICE_EVAL_TRANSFORMS, centre_crop, pil_resize
from genimage_fast.loaders.eval_transforms import centre_crop as host_centre_crop
from genimage_fast.loaders.plan import BatchPlan
from genimage_fast.registry import Registry

SourceDegradation = Callable[[torch.Tensor, Any, str], torch.Tensor]  # (x [n,3,H,W] uint8, value, backend)
SOURCE_DEGRADATIONS: Registry[SourceDegradation] = Registry("source degradation")


@SOURCE_DEGRADATIONS.register("lr")
def _lr(x: torch.Tensor, size: int, backend: str) -> torch.Tensor:
    """PIL's Image.resize((S, S), BILINEAR): the squash pipelines.degrade_image does on the host."""
    return pil_resize(x, (int(size), int(size)), "bilinear")


@SOURCE_DEGRADATIONS.register("jpeg")
def _jpeg(x: torch.Tensor, quality: int, backend: str) -> torch.Tensor:
    from genimage_fast.degrade import ops

    return ops.jpeg(x, int(quality), backend=backend)  # PIL's 4:2:0 save + decode (Triton on CUDA)


@SOURCE_DEGRADATIONS.register("blur")
def _blur(x: torch.Tensor, sigma: float, backend: str) -> torch.Tensor:
    from genimage_fast.degrade import ops

    # scipy's gaussian_filter on uint8 planes truncates after each pass: Task 2's blur (DESIGN §4.2)
    return ops.gaussian_blur(x, float(sigma), backend=backend, truncate_uint8=True)


def applies(loader) -> bool:  # noqa: ANN001 - a loaders.base.Loader
    """The cpu backend runs the eval pipeline on the device: CUDA, an eval (not train) full-image
    pipeline whose transform has a device twin."""
    pipeline = loader.pipeline
    return (loader.device.type == "cuda" and pipeline is not None and not pipeline.train
            and pipeline.name in DEVICE_EVAL_TRANSFORMS)


# ---------------------------------------------------------------------------------------------- workers


@dataclass
class FullBatch:
    """A worker's half of a batch: host-decoded images packed in one buffer, JPEG bytes for nvJPEG."""

    pixels: torch.Tensor  # uint8 [sum of H*W*3]: the host-decoded images, HWC each, back to back
    shapes: list[tuple[int, int]]  # (H, W) of each host image
    host_positions: list[int]  # their positions in the batch
    jpegs: list[torch.Tensor]  # undecoded bytes for nvJPEG
    jpeg_positions: list[int]

    def pin_memory(self) -> FullBatch:
        """DataLoader(pin_memory=True) calls this: the pixels go up in one non-blocking copy."""
        return FullBatch(self.pixels.pin_memory(), self.shapes, self.host_positions, self.jpegs, self.jpeg_positions)


def full_batch(samples: Sequence[tuple[str, object]], indices: Sequence[int], centre: np.ndarray | None,
               nvjpeg: bool) -> FullBatch:
    """Decode at full size what nvJPEG does not take (cropped to the protocol side); pass the rest on."""
    decoded, host_positions, jpegs, jpeg_positions = [], [], [], []
    for j, (kind, payload) in enumerate(samples):
        if nvjpeg and gpu_decode.route(kind, payload):
            jpeg_positions.append(j)
            jpegs.append(torch.frombuffer(bytearray(bytes(payload)), dtype=torch.uint8))  # type: ignore[arg-type]
        else:
            decoded.append(decode_full(kind, payload))
            host_positions.append(j)
    part = pack(decoded, [indices[j] for j in host_positions], centre)
    part.host_positions, part.jpegs, part.jpeg_positions = host_positions, jpegs, jpeg_positions
    return part


def pack(images: Sequence[np.ndarray], indices: Sequence[int], centre: np.ndarray | None) -> FullBatch:
    """Host-decoded HWC images (of split samples `indices`), each cropped to the records' protocol side,
    back to back in one buffer: a FullBatch with no JPEGs left for nvJPEG (positions 0..n-1)."""
    arrays, shapes = [], []
    for image, index in zip(images, indices, strict=True):
        if centre is not None and centre[index] > 0:
            image = host_centre_crop(image, int(centre[index]))
        arrays.append(np.ascontiguousarray(image).reshape(-1))
        shapes.append((int(image.shape[0]), int(image.shape[1])))
    pixels = torch.from_numpy(np.concatenate(arrays)) if arrays else torch.empty(0, dtype=torch.uint8)
    return FullBatch(pixels, shapes, list(range(len(arrays))), [], [])


class FullDecoder(gpu_decode.PlanDataset):
    """FullBatch per plan: full-size host decodes (cropped to the protocol side) and nvJPEG's bytes."""

    def __init__(self, batch_decoder, nvjpeg: bool) -> None:  # noqa: ANN001 - a loaders.cpu.BatchDecoder
        super().__init__(batch_decoder)
        self.nvjpeg = nvjpeg

    def build(self, plan: BatchPlan, samples: list[tuple[str, object]]) -> FullBatch:
        return full_batch(samples, [int(i) for i in plan.indices], self.inner.pipeline.centre, self.nvjpeg)


# ---------------------------------------------------------------------------------------------- device


@dataclass
class DeviceEval:
    """The main-process half: upload, nvJPEG, group by size, degrade, eval transform, reassemble."""

    pipeline: Any  # pipelines.SamplePipeline (eval)
    device: torch.device
    decode: gpu_decode.DecodeMany | None  # nvJPEG (None: the workers decode everything)
    backend: str = "auto"  # the degradations' kernels: "auto" = Triton on CUDA (tests pick "triton" / "torch")

    def __post_init__(self) -> None:
        self.transform = DEVICE_EVAL_TRANSFORMS.get(self.pipeline.name)(self.pipeline.transform)

    def __call__(self, part: FullBatch, plan: BatchPlan) -> torch.Tensor:
        size, n = self.pipeline.image_size, len(plan)
        images: list[torch.Tensor | None] = [None] * n
        flat = upload(part.pixels, self.device)
        start = 0
        for j, (h, w) in zip(part.host_positions, part.shapes, strict=True):
            images[j] = flat[start:start + h * w * 3].view(h, w, 3).permute(2, 0, 1)
            start += h * w * 3
        for j, image in zip(part.jpeg_positions, self._nvjpeg(part, plan), strict=True):
            side = self._centre(int(plan.indices[j]))
            images[j] = centre_crop(image, side) if side else image
        out = torch.empty((n, size, size, 3), dtype=torch.uint8, device=self.device)
        for (h, w), members in _groups(images).items():
            result = self.run(torch.stack([images[j] for j in members]))
            if result.dtype != torch.uint8 or tuple(result.shape) != (len(members), 3, size, size):
                raise GenImageError(f"device eval transform {self.pipeline.name!r} returned {result.dtype} "
                                    f"{tuple(result.shape)} for {h}x{w} images, expected uint8 (n, 3, {size}, {size})")
            where = upload(torch.tensor(members, dtype=torch.int64), self.device)
            out.index_copy_(0, where, result.permute(0, 2, 3, 1))
        return out.permute(0, 3, 1, 2)  # channels_last strides, as the cpu backend yields

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """One size group [n, 3, H, W]: the spec on the full image, then the eval transform."""
        if self.pipeline.degrade is not None:
            name, value = self.pipeline.degrade
            x = SOURCE_DEGRADATIONS.get(name)(x, value, self.backend)
        return self.transform(x)

    def _centre(self, index: int) -> int:
        centre = self.pipeline.centre
        return int(centre[index]) if centre is not None and centre[index] > 0 else 0

    def _nvjpeg(self, part: FullBatch, plan: BatchPlan) -> list[torch.Tensor]:
        if not part.jpegs:
            return []
        try:
            return self.decode(part.jpegs)  # type: ignore[misc]
        except RuntimeError as err:  # nvJPEG names no sample: name the batch's
            picked = [int(plan.indices[j]) for j in part.jpeg_positions]
            raise GenImageError(f"nvJPEG cannot decode the JPEG samples {picked}: {err}") from err


def _groups(images: Sequence[torch.Tensor | None]) -> dict[tuple[int, int], list[int]]:
    """Batch positions by image size (H, W), in first-seen order (shapes are host metadata: no sync)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for j, image in enumerate(images):
        if image is None:
            raise GenImageError(f"sample at batch position {j} was neither decoded nor sent to nvJPEG")
        groups.setdefault((int(image.shape[-2]), int(image.shape[-1])), []).append(j)
    return groups


def nvjpeg_for(device: torch.device) -> gpu_decode.DecodeMany | None:
    """torchvision's nvJPEG when it works on `device`, else None (the workers decode the JPEGs)."""
    return gpu_decode.nvjpeg_decoder(device) if gpu_decode.nvjpeg_missing(str(device)) is None else None


def images(loader, plans: list[BatchPlan], batch_decoder, stage: DeviceEval) -> Iterator[torch.Tensor]:  # noqa: ANN001
    """The cpu backend's `_images` on the device path: workers decode, the device degrades and transforms."""
    workers = min(loader.num_workers, len(plans))
    parts = DataLoader(FullDecoder(batch_decoder, stage.decode is not None), batch_size=None, shuffle=False,
                       num_workers=workers, pin_memory=loader.device.type == "cuda",
                       prefetch_factor=4 if workers else None, collate_fn=_identity, generator=torch.Generator())
    for plan, part in zip(plans, parts, strict=True):
        yield stage(part, plan)


def _identity(item: FullBatch) -> FullBatch:
    return item
