"""Overlap the host-to-GPU copy of batch k+1 with the training step on batch k (CUDA side stream)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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
        if batch.images.device == device:  # a GPU-decoding backend already put it there
            return batch
        host = batch if batch.images.is_pinned() else batch.pin_memory()
        with torch.cuda.stream(stream):
            return host.to(device, non_blocking=True)

    pending: Batch | None = None
    for batch in batches:
        ready = upload(batch)
        if pending is not None:
            yield _handover(pending, stream)
        pending = ready
    if pending is not None:
        yield _handover(pending, stream)


def _handover(batch: Batch, stream: torch.cuda.Stream) -> Batch:
    current = torch.cuda.current_stream(stream.device)
    current.wait_stream(stream)
    for tensor in (batch.images, batch.labels, batch.generators, batch.class_ids, batch.indices):
        tensor.record_stream(current)
    return batch
