"""The prefetcher's hand-over (issue #17 item 2): batch k is handed over after waiting on an event
recorded right after ITS copies (not `wait_stream`, which would also wait for batch k+1's copy), with
batch k+1's copy already queued, and every tensor recorded on the consumer's stream.

On the CPU the CUDA primitives are replaced by a recording fake (the `CudaStreams` seam); on a GPU
the real thing is checked for data integrity under a busy consumer and for copy/compute overlap."""

from __future__ import annotations

import contextlib
from dataclasses import fields

import numpy as np
import pytest
import torch

from genimage_fast.loaders.batch import Batch
from genimage_fast.loaders.prefetch import CudaStreams, host_copy, prefetch
from tests.conftest import requires_cuda


class FakeEvent:
    def __init__(self, log: list, n: int) -> None:
        self.log, self.n, self.stream = log, n, None

    def record(self, stream) -> None:  # noqa: ANN001
        self.stream = stream
        self.log.append(("record", self.n, stream))


class FakeStream:
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def wait_event(self, event: FakeEvent) -> None:
        self.log.append(("wait_event", self.name, event.n))

    def wait_stream(self, other) -> None:  # noqa: ANN001 - must never be used
        self.log.append(("wait_stream", self.name, other.name))

    def __repr__(self) -> str:
        return self.name


class Recorder(CudaStreams):
    """Logs every primitive in order; copies are CPU clones tagged with the stream they ran on."""

    def __init__(self) -> None:
        self.log: list = []
        self.side = FakeStream("side", self.log)
        self.main = FakeStream("main", self.log)
        self.active = self.main
        self.events = 0

    def side_stream(self, device):  # noqa: ANN001, ANN201
        return self.side

    def current_stream(self, device):  # noqa: ANN001, ANN201
        return self.main

    @contextlib.contextmanager
    def on(self, stream):  # noqa: ANN001, ANN201
        previous, self.active = self.active, stream
        try:
            yield
        finally:
            self.active = previous

    def event(self) -> FakeEvent:
        self.events += 1
        return FakeEvent(self.log, self.events - 1)

    def copy(self, tensor, device):  # noqa: ANN001, ANN201
        self.log.append(("copy", self.active.name, int(tensor.reshape(-1)[0])))
        return tensor.clone()

    def record_stream(self, tensor, stream) -> None:  # noqa: ANN001
        self.log.append(("record_stream", stream.name))


def source(n: int):
    for k in range(n):
        t = torch.full((2,), k, dtype=torch.int64)
        yield Batch(images=torch.full((2, 3, 4, 4), k, dtype=torch.uint8), labels=t, generators=t.clone(),
                    class_ids=t.clone(), indices=t.clone())


def test_cpu_device_is_a_passthrough() -> None:
    items = list(source(3))
    assert [b is a for a, b in zip(items, prefetch(iter(items), torch.device("cpu")), strict=True)] == [True] * 3


def test_handover_waits_on_each_batchs_own_event_after_the_next_copy_is_queued() -> None:
    rec = Recorder()
    got = []
    for batch in prefetch(source(3), torch.device("cuda"), cuda=rec):
        rec.log.append(("consumed", int(batch.labels[0])))
        got.append(batch)
    assert [int(b.labels[0]) for b in got] == [0, 1, 2]
    log = rec.log
    assert not [e for e in log if e[0] == "wait_stream"]
    n_fields = len(fields(Batch))
    # Every copy ran on the side stream, and its batch's event was recorded there right after them.
    for k in range(3):
        copies = [i for i, e in enumerate(log) if e[0] == "copy" and e[2] == k]
        assert len(copies) == n_fields and all(log[i][1] == "side" for i in copies)
        rec_at = log.index(("record", k, rec.side))
        assert rec_at == copies[-1] + 1
        wait_at = log.index(("wait_event", "main", k))
        consumed_at = log.index(("consumed", k))
        assert rec_at < wait_at < consumed_at
        # batch k+1's copies were queued before batch k was handed over: they overlap step k
        if k < 2:
            assert log.index(("record", k + 1, rec.side)) < wait_at
        # all of batch k's tensors are recorded on the consumer's stream before it gets them
        between = log[wait_at + 1:consumed_at]
        assert between.count(("record_stream", "main")) == n_fields
    # the consumer never waits on a later batch's event before consuming an earlier one
    waits = [e[2] for e in log if e[0] == "wait_event"]
    assert waits == [0, 1, 2]


def test_host_copy_is_one_copy_into_a_fresh_buffer() -> None:
    src = np.arange(2 * 5 * 5 * 3, dtype=np.uint8).reshape(2, 5, 5, 3)
    out = host_copy(src, pin=False)
    src[:] = 0  # the library reuses its buffer: the copy must not change
    assert out.dtype == torch.uint8 and out.shape == (2, 5, 5, 3)
    assert int(out.sum()) == int(np.arange(150, dtype=np.uint8).astype(np.int64).sum())


@requires_cuda
def test_cuda_prefetch_delivers_intact_batches_under_a_busy_consumer() -> None:
    dev = torch.device("cuda", torch.cuda.current_device())
    g = torch.Generator().manual_seed(0)
    host = [torch.randint(0, 256, (64, 3, 64, 64), dtype=torch.uint8, generator=g) for _ in range(6)]
    sums = [h.sum(dim=(1, 2, 3), dtype=torch.int64) for h in host]
    a = torch.randn(2048, 2048, device=dev)

    def batches():
        for k, h in enumerate(host):
            lab = torch.full((64,), k, dtype=torch.int64)
            yield Batch(images=h, labels=lab, generators=lab, class_ids=lab, indices=lab)

    seen = []
    for batch in prefetch(batches(), dev):
        assert batch.images.is_cuda
        for _ in range(4):  # keep the consumer's stream busy so a missing wait would show
            a = a @ a / a.norm()
        seen.append((batch.images.sum(dim=(1, 2, 3), dtype=torch.int64), batch.labels[:1].clone()))
    for s, lab in seen:
        assert torch.equal(s.cpu(), sums[int(lab.item())])


@requires_cuda
def test_cuda_host_copy_is_pinned() -> None:
    assert host_copy(np.zeros((2, 3), dtype=np.uint8), pin=True).is_pinned()


@pytest.mark.parametrize("n", [0, 1])
def test_short_sources(n: int) -> None:
    rec = Recorder()
    assert len(list(prefetch(source(n), torch.device("cuda"), cuda=rec))) == n
