"""Counting host syncs, on the CPU as on a GPU: one helper for the degrade API and the training step.

`SyncCounter` is a TorchDispatchMode that records, for every op dispatched while it is active:
  * `scalar_reads`: `aten._local_scalar_dense`, i.e. every `.item()`, `int(t)`, `float(t)`, `bool(t)`
    (a device-to-host sync on CUDA; on the CPU the same call sites are the ones that would sync);
  * `pageable_uploads`: host-to-device copies whose source is not pinned, or that are not
    non_blocking, plus `torch.tensor(data, device=cuda)` / `as_tensor(data, device=cuda)` (seen by a
    companion TorchFunctionMode, as they copy below the dispatcher): each one blocks the host;
  * `device_reads`: device-to-host copies (`.cpu()`, `.tolist()` and `.numpy()` of a device tensor);
  * `data_dependent`: ops whose output shape depends on device values (`nonzero`, boolean-mask
    indexing, `masked_select`, `unique`, ...), which sync on CUDA. Counted on every device, so a
    CPU test sees them too.
Scalar reads and data-dependent ops on CPU tensors are host work, not syncs, where a GPU does the
device work; on a machine without CUDA they are counted, since there the CPU stands in for the
device (`cpu_scalars=None`, the default, picks by `torch.cuda.is_available()`).
`.tolist()` / `.numpy()` of a CPU tensor do not dispatch, so host-side code may read host tensors
(e.g. draws from a CPU generator) freely; on CUDA the same calls on a device tensor are copies and
count. On a GPU, `cuda_sync_debug("error")` adds the driver-level check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_DATA_DEPENDENT = {
    aten.nonzero.default, aten.masked_select.default, aten.nonzero_static.default,
    aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
    aten.repeat_interleave.Tensor,
}
_KEEP = 20  # op descriptions kept for the report


@dataclass
class SyncCounts:
    scalar_reads: int = 0
    pageable_uploads: int = 0
    device_reads: int = 0
    data_dependent: int = 0
    where: list[str] = field(default_factory=list)  # the first few offending ops, for messages

    @property
    def total(self) -> int:
        return self.scalar_reads + self.pageable_uploads + self.device_reads + self.data_dependent

    def as_dict(self) -> dict:
        return {"total": self.total, "scalar_reads": self.scalar_reads, "pageable_uploads": self.pageable_uploads,
                "device_reads": self.device_reads, "data_dependent": self.data_dependent, "where": list(self.where)}


def _device(value: object) -> torch.device | None:
    if isinstance(value, torch.device):
        return value
    if isinstance(value, str):
        return torch.device(value)
    return None


class _FactoryWatch(TorchFunctionMode):
    """torch.tensor / as_tensor / asarray of host data straight onto a device."""

    def __init__(self, counter: SyncCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor, torch.asarray):
            dev = _device(kwargs.get("device"))
            src = args[0] if args else None
            on_host = not isinstance(src, torch.Tensor) or src.device.type == "cpu"
            if dev is not None and dev.type != "cpu" and on_host:
                self.counter._hit("pageable_uploads", f"torch.{func.__name__}(host data, device={dev})")
        return func(*args, **kwargs)


class SyncCounter(TorchDispatchMode):
    """with SyncCounter() as c: step(); assert c.counts.total == 0, c.counts.where"""

    def __init__(self, cpu_scalars: bool | None = None) -> None:
        super().__init__()
        self.counts = SyncCounts()
        self.cpu_scalars = (not torch.cuda.is_available()) if cpu_scalars is None else cpu_scalars
        self._factories = _FactoryWatch(self)

    def _on_device(self, t: object) -> bool:
        return isinstance(t, torch.Tensor) and (self.cpu_scalars or t.device.type != "cpu")

    def __enter__(self) -> SyncCounter:
        self._factories.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._factories.__exit__(*exc)

    def _hit(self, kind: str, what: str) -> None:
        setattr(self.counts, kind, getattr(self.counts, kind) + 1)
        if len(self.counts.where) < _KEEP:
            self.counts.where.append(f"{kind}: {what}")

    def _copy(self, src: torch.Tensor, dst_device: torch.device, non_blocking: bool, name: str) -> None:
        if src.device.type == "cpu" and dst_device.type != "cpu":
            if not (non_blocking and src.is_pinned()):
                self._hit("pageable_uploads", f"{name} {list(src.shape)} cpu->{dst_device}")
        elif src.device.type != "cpu" and dst_device.type == "cpu":
            self._hit("device_reads", f"{name} {list(src.shape)} {src.device}->cpu")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        kwargs = kwargs or {}
        name = str(func)
        if func is aten._local_scalar_dense.default:
            if self._on_device(args[0]):
                self._hit("scalar_reads", f"{name} on {args[0].device}")
        elif func in _DATA_DEPENDENT:
            if self._on_device(args[0]):
                self._hit("data_dependent", name)
        elif func is aten.index.Tensor and self._on_device(args[0]) and any(
                isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in args[1]):
            self._hit("data_dependent", f"{name} with a boolean mask")
        elif func is aten._to_copy.default:
            dst = _device(kwargs.get("device"))
            if dst is not None and dst != args[0].device:
                self._copy(args[0], dst, bool(kwargs.get("non_blocking", False)), name)
        elif func is aten.copy_.default:
            dst, src = args[0], args[1]
            if dst.device != src.device:
                non_blocking = bool(args[2] if len(args) > 2 else kwargs.get("non_blocking", False))
                self._copy(src, dst.device, non_blocking, name)
        return func(*args, **kwargs)


def count_syncs(fn: Callable[[], object], cpu_scalars: bool | None = None) -> SyncCounts:
    """Run fn() once under a SyncCounter and return what it counted."""
    with SyncCounter(cpu_scalars) as counter:
        fn()
    return counter.counts


@contextlib.contextmanager
def cuda_sync_debug(mode: str = "error") -> Iterator[None]:
    """torch.cuda.set_sync_debug_mode(mode) for the block (CUDA only: the driver sees every sync)."""
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)
