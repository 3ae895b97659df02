"""Overlap the host-to-GPU copy of batch k+1 with the training step on batch k (CUDA side stream)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields

import torch

from genimage_fast.loaders.batch import Batch


def prefetch(batches: Iterable[Batch], device: torch.device) -> Iterator[Batch]:
    """Yield batches on `device`; on CUDA the next copy runs on a side stream while the caller works.

    On the CPU this is a passthrough. Host tensors are pinned first so `non_blocking` copies are
    truly asynchronous; the consumer's stream waits on the copy and the tensors are marked as used
    by it (`record_stream`) so the caching allocator does not recycle them early.
    """
    if device.type != "cuda":
        yield from batches
        return
    stream = torch.cuda.Stream(device=device)

    def upload(batch: Batch) -> Batch:
        # GPU-decoding backends hand over images already on the device; the metadata still moves.
        with torch.cuda.stream(stream):
            return Batch(**{f.name: _pinned(getattr(batch, f.name)).to(device, non_blocking=True)
                            for f in fields(batch)})

    pending: Batch | None = None
    for batch in batches:
        ready = upload(batch)
        if pending is not None:
            yield _handover(pending, stream)
        pending = ready
    if pending is not None:
        yield _handover(pending, stream)


def _pinned(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.is_cuda or tensor.is_pinned() else tensor.pin_memory()


def _handover(batch: Batch, stream: torch.cuda.Stream) -> Batch:
    current = torch.cuda.current_stream(stream.device)
    current.wait_stream(stream)
    for f in fields(batch):
        getattr(batch, f.name).record_stream(current)
    return batch
