"""Overlap the host-to-GPU copy of batch k+1 with the training step on batch k (CUDA side stream).

Hand-over by a per-batch event (issue #17): each batch's copies are queued on the side stream and an
event is recorded right after them; when the consumer takes batch k, its stream waits on batch k's
event only. (`wait_stream` at that point would also wait for batch k+1's copy, queued on the same
stream just before, so the copy would never overlap the step.) Every tensor is then marked as used
by the consumer's stream (`record_stream`), so the caching allocator does not recycle it early.
Host tensors are pinned first so `non_blocking` copies are truly asynchronous; loaders that copy
out of a reused buffer anyway (FFCV) copy straight into pinned memory with `host_copy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from genimage_fast.loaders.batch import Batch


class CudaStreams:
    """The CUDA primitives the prefetcher uses, behind one seam so the hand-over logic can be tested
    without a GPU (tests/test_prefetch.py passes a recording fake)."""

    def side_stream(self, device: torch.device) -> Any:
        return torch.cuda.Stream(device=device)

    def current_stream(self, device: torch.device) -> Any:
        return torch.cuda.current_stream(device)

    def on(self, stream: Any) -> Any:
        """Context manager: queue work on `stream`."""
        return torch.cuda.stream(stream)

    def event(self) -> Any:
        return torch.cuda.Event()

    def copy(self, tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
        """An asynchronous copy on the current stream (pinned source; device tensors stay as they are)."""
        return _pinned(tensor).to(device, non_blocking=True)

    def record_stream(self, tensor: torch.Tensor, stream: Any) -> None:
        tensor.record_stream(stream)


@dataclass
class _InFlight:
    batch: Batch
    copied: Any  # the event recorded after this batch's copies


def prefetch(batches: Iterable[Batch], device: torch.device, cuda: CudaStreams | None = None) -> Iterator[Batch]:
    """Yield batches on `device`; on CUDA the next copy runs on a side stream while the caller works.

    On the CPU this is a passthrough. `cuda` replaces the CUDA primitives (tests)."""
    if device.type != "cuda":
        yield from batches
        return
    ops = cuda or CudaStreams()
    stream = ops.side_stream(device)

    def upload(batch: Batch) -> _InFlight:
        # GPU-decoding backends hand over images already on the device; the metadata still moves.
        with ops.on(stream):
            moved = Batch(**{f.name: ops.copy(getattr(batch, f.name), device) for f in fields(batch)})
            copied = ops.event()
            copied.record(stream)
        return _InFlight(moved, copied)

    pending: _InFlight | None = None
    for batch in batches:
        ready = upload(batch)  # batch k+1's copy is queued before batch k is handed over
        if pending is not None:
            yield _handover(pending, ops.current_stream(device), ops)
        pending = ready
    if pending is not None:
        yield _handover(pending, ops.current_stream(device), ops)


def _pinned(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.is_cuda or tensor.is_pinned() else tensor.pin_memory()


def _handover(item: _InFlight, current: Any, ops: CudaStreams) -> Batch:
    current.wait_event(item.copied)  # this batch's copies only, not the next one's
    for f in fields(item.batch):
        ops.record_stream(getattr(item.batch, f.name), current)
    return item.batch


def host_copy(array: np.ndarray, pin: bool) -> torch.Tensor:
    """A torch copy of `array` (one memcpy), in pinned memory when `pin`: for loaders whose library
    reuses its output buffers, so the prefetcher need not pin (copy) the batch a second time."""
    out = torch.empty(array.shape, dtype=torch.from_numpy(np.empty(0, dtype=array.dtype)).dtype, pin_memory=pin)
    out.numpy()[...] = array
    return out
