"""The batch every backend yields."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    """images uint8 [N,3,H,W] on the loader's device; labels, generators, class_ids, indices int64 [N].

    `indices` are positions in the split, so evaluation can map predictions back to `meta["path"]`.
    """

    images: torch.Tensor
    labels: torch.Tensor
    generators: torch.Tensor
    class_ids: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on `device` (no copy for tensors already there)."""
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})

    def pin_memory(self) -> Batch:
        """Page-locked host copies, so a later non_blocking copy to the GPU really is asynchronous."""
        return Batch(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})
