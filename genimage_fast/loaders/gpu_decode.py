"""GPU JPEG decode for the `cpu` backend without DALI (issue #17 item 5): torchvision's batched nvJPEG.

When the cpu backend runs with device="cuda" on the box path (rrc / resize_crop / the default eval
crop: no full-image pipeline, no fast_jpeg_decode) and torchvision has its CUDA decoder, a batch is
split by `route`: 8-bit 3-component baseline / extended / progressive JPEGs (GenImage's reals) go to
nvJPEG as undecoded bytes; everything else (PNG fakes, lossless, raw, grayscale or CMYK JPEGs) is
decoded and resized by the DataLoader workers exactly as on the CPU path. The main process decodes
the batch's JPEGs with one `torchvision.io.decode_jpeg(list, device=cuda)` call and resizes each
planned box on the device with the geometry of the CPU path: PIL's antialiased bilinear resize of
a fractional box (`box_weights` rebuilds PIL's Resample.c coefficients; a horizontal pass rounded to
uint8, then a vertical one, as PIL does), then the flip. The weights are built on the host and go up
in one pinned non-blocking copy per batch; the products run in float64 (exact, and out of TF32's
reach). nvJPEG's IDCT / upsampling differ from libjpeg-turbo's by rounding (<= 1 level mean,
tests/test_gpu_decode.py), so the loader's `decoder` is recorded as "nvjpeg".
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.base import locate_file
from genimage_fast.loaders.decode import decode_crop, sniff
from genimage_fast.loaders.device_transforms import pil_coefficients
from genimage_fast.loaders.plan import BatchPlan
from genimage_fast.loaders.transforms import pixel_box

NVJPEG = "nvjpeg"  # Loader.decoder when the reals are decoded on the GPU
_NVJPEG_SOF = (0xC0, 0xC1, 0xC2)  # baseline, extended and progressive Huffman: what nvJPEG decodes
_SOF = {m for m in range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}  # frame markers (C4 DHT, C8 JPG, CC DAC are not)


@functools.lru_cache(maxsize=8)
def nvjpeg_missing(device: str = "cuda") -> str | None:
    """Why torchvision cannot decode JPEGs on `device` here, or None (tried once on a tiny JPEG)."""
    if not torch.cuda.is_available():
        return "CUDA is not available"
    try:
        from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

        probe = encode_jpeg(torch.zeros(3, 8, 8, dtype=torch.uint8))
        decode_jpeg([probe], mode=ImageReadMode.RGB, device=device)
    except Exception as err:  # noqa: BLE001 - any failure means no GPU decode: the workers decode
        return f"torchvision cannot decode JPEGs on {device} ({type(err).__name__}: {err})"[:300]
    return None


def applies(loader) -> bool:  # noqa: ANN001 - a loaders.base.Loader
    """The cpu backend hands JPEGs to nvJPEG: CUDA device, box path, full-size decode, nvJPEG present."""
    return (loader.device.type == "cuda" and loader.pipeline is None and not loader.fast_jpeg
            and nvjpeg_missing(str(loader.device)) is None)


def jpeg_frame(data: bytes | bytearray | memoryview | np.ndarray) -> tuple[int, int, int] | None:
    """(SOF marker, sample precision, components) from a JPEG's frame header; None when not found."""
    buf = data if isinstance(data, bytes) else bytes(data)
    i = 2
    while i + 9 < len(buf):
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        length = int.from_bytes(buf[i + 2:i + 4], "big")
        if marker in _SOF:
            return marker, buf[i + 4], buf[i + 9]
        if marker == 0xDA:  # start of scan before any frame header: malformed
            return None
        i += 2 + length
    return None


def route(kind: str, payload: object) -> bool:
    """True when this stored sample goes to nvJPEG (see the module docstring), False for the workers."""
    if sniff(kind, payload) != "jpeg":
        return False
    frame = jpeg_frame(payload)  # type: ignore[arg-type]
    return frame is not None and frame[0] in _NVJPEG_SOF and frame[1] == 8 and frame[2] == 3


# ---------------------------------------------------------------------------------------------- geometry


def box_weights(in_size: int, start: float, end: float, out_size: int) -> tuple[int, np.ndarray]:
    """PIL's bilinear resampling coefficients (Resample.c precompute_coeffs, with its float32 box
    arithmetic: device_transforms.pil_coefficients) for the source span [start, end) of an axis of
    in_size pixels resized to out_size: (first source pixel, weights float64 [out_size, k])."""
    return pil_coefficients(in_size, start, end, out_size, "bilinear")


@dataclass(frozen=True)
class ResizePlan:
    """The host half of one image's box resize: source window and both axes' weights."""

    y0: int
    x0: int
    wy: np.ndarray  # [S, ky]
    wx: np.ndarray  # [S, kx]
    flip: bool


def plan_resize(height: int, width: int, box: np.ndarray, size: int, flip: bool) -> ResizePlan:
    bx0, by0, bx1, by1 = pixel_box(box, width, height)
    x0, wx = box_weights(width, bx0, bx1, size)
    y0, wy = box_weights(height, by0, by1, size)
    return ResizePlan(y0, x0, wy, wx, bool(flip))


def resize_on_device(image: torch.Tensor, plan: ResizePlan, wy: torch.Tensor, wx: torch.Tensor) -> torch.Tensor:
    """uint8 [3, H, W] -> uint8 [3, S, S]: PIL's order (horizontal pass rounded to uint8, vertical),
    float64 products; wy/wx are the plan's weights already on the image's device."""
    window = image[:, plan.y0:plan.y0 + wy.shape[1], plan.x0:plan.x0 + wx.shape[1]].to(torch.float64)
    rows = (window @ wx.T).round_().clamp_(0, 255)  # [3, ky, S]
    out = (wy @ rows).round_().clamp_(0, 255).to(torch.uint8)  # [3, S, S]
    return out.flip(-1) if plan.flip else out


def upload_weights(plans: Sequence[ResizePlan], device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every plan's (wy, wx) on `device` from one pinned, non-blocking copy."""
    parts = [a for p in plans for a in (p.wy, p.wx)]
    if not parts:
        return []
    host = torch.from_numpy(np.concatenate([a.reshape(-1) for a in parts]))
    flat = host.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else host.to(device)
    views, start = [], 0
    for a in parts:
        views.append(flat[start:start + a.size].view(a.shape))
        start += a.size
    return list(zip(views[::2], views[1::2], strict=True))


# ---------------------------------------------------------------------------------------------- batches


@dataclass
class SplitBatch:
    """A worker's half of a batch: host pixels for the samples it decoded (zeros where a JPEG goes
    to nvJPEG), the positions of those JPEGs in the batch and their undecoded bytes."""

    host: torch.Tensor  # uint8 [N, S, S, 3]
    positions: torch.Tensor  # int64 [K]
    jpegs: list[torch.Tensor]  # K uint8 [bytes] tensors

    def pin_memory(self) -> SplitBatch:
        """DataLoader(pin_memory=True) calls this: the pixels are pinned for their non-blocking upload."""
        return SplitBatch(self.host.pin_memory(), self.positions, self.jpegs)


def split_batch(samples: Sequence[tuple[str, object]], plan: BatchPlan, size: int) -> SplitBatch:
    """Decode on the host what nvJPEG will not take; pass the rest on as bytes (`route`)."""
    host = np.zeros((len(plan), size, size, 3), dtype=np.uint8)
    positions, jpegs = [], []
    for j, (kind, payload) in enumerate(samples):
        if route(kind, payload):
            positions.append(j)
            jpegs.append(torch.frombuffer(bytearray(bytes(payload)), dtype=torch.uint8))  # type: ignore[arg-type]
        else:
            host[j] = decode_crop(kind, payload, plan.boxes[j], size, bool(plan.flips[j]))
    return SplitBatch(torch.from_numpy(host), torch.tensor(positions, dtype=torch.int64), jpegs)


DecodeMany = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def nvjpeg_decoder(device: torch.device) -> DecodeMany:
    """torchvision's batched nvJPEG: list of byte tensors -> list of uint8 [3, H, W] RGB on `device`."""
    from torchvision.io import ImageReadMode, decode_jpeg

    def decode(datas: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))

    return decode


def assemble(part: SplitBatch, plan: BatchPlan, size: int, device: torch.device,
             decode: DecodeMany) -> torch.Tensor:
    """The batch on `device` as uint8 [N, 3, S, S] (channels_last strides, like the cpu backend)."""
    out = part.host.to(device, non_blocking=True)
    if part.jpegs:
        try:
            images = decode(part.jpegs)
        except RuntimeError as err:  # nvJPEG names no sample: name the batch's
            picked = [int(plan.indices[j]) for j in part.positions.tolist()]
            raise GenImageError(f"nvJPEG cannot decode the JPEG samples {picked}: {err}") from err
        positions = part.positions.tolist()  # a host tensor: no device read
        plans = [plan_resize(int(img.shape[-2]), int(img.shape[-1]), plan.boxes[j], size, bool(plan.flips[j]))
                 for img, j in zip(images, positions, strict=True)]
        weights = upload_weights(plans, device)
        resized = torch.stack([resize_on_device(img, p, wy, wx)
                               for img, p, (wy, wx) in zip(images, plans, weights, strict=True)])
        index = part.positions.pin_memory().to(device, non_blocking=True) if device.type == "cuda" \
            else part.positions.to(device)
        out.index_copy_(0, index, resized.permute(0, 2, 3, 1))
    return out.permute(0, 3, 1, 2)


class PlanDataset(ABC):
    """Dataset of one item per plan (the worker side), built on the cpu backend's BatchDecoder: reads the
    plan's stored samples and hands them to `build`; a damaged record names the file(s) the batch reads."""

    def __init__(self, batch_decoder) -> None:  # noqa: ANN001 - a loaders.cpu.BatchDecoder
        self.inner = batch_decoder

    def __len__(self) -> int:
        return len(self.inner)

    @abstractmethod
    def build(self, plan: BatchPlan, samples: list[tuple[str, object]]) -> object:
        """What the main process receives for this plan, from its stored (kind, payload) samples."""

    def __getitem__(self, b: int) -> object:
        plan = self.inner.plans[b]
        split = self.inner._split()
        try:
            return self.build(plan, [split.read_encoded(int(i)) for i in plan.indices])
        except GenImageError:
            raise
        except Exception as err:  # a damaged record: name the file(s) the batch reads
            where = sorted({locate_file(self.inner.records, self.inner.split_name, int(i)) for i in plan.indices})
            raise GenImageError(f"{', '.join(where)}: cannot read batch {b}: {type(err).__name__}: {err}") from err


class SplitDecoder(PlanDataset):
    """SplitBatch per plan: the workers decode what nvJPEG will not take (`split_batch`)."""

    def build(self, plan: BatchPlan, samples: list[tuple[str, object]]) -> SplitBatch:
        return split_batch(samples, plan, self.inner.image_size)


def images(loader, plans: list[BatchPlan], batch_decoder) -> Iterator[torch.Tensor]:  # noqa: ANN001
    """The cpu backend's `_images` with nvJPEG: workers decode the non-JPEGs, the main process the JPEGs."""
    workers = min(loader.num_workers, len(plans))
    parts = DataLoader(SplitDecoder(batch_decoder), batch_size=None, shuffle=False, num_workers=workers,
                       pin_memory=loader.device.type == "cuda", prefetch_factor=4 if workers else None,
                       collate_fn=_identity,
                       generator=torch.Generator())
    decode = nvjpeg_decoder(loader.device)
    for plan, part in zip(plans, parts, strict=True):
        yield assemble(part, plan, loader.image_size, loader.device, decode)


def _identity(item: SplitBatch) -> SplitBatch:
    return item
