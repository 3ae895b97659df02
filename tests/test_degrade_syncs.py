"""Host syncs: the shared counter (genimage_fast/engine/syncs.py) and zero syncs per `degrade.*` call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genimage_fast import degrade
from genimage_fast.engine.syncs import SyncCounter, count_syncs, cuda_sync_debug
from tests.conftest import requires_cuda


def test_counter_sees_each_kind_of_sync() -> None:
    x = torch.arange(12.0)
    mask = x > 3
    cases = {
        "scalar_reads": [lambda: x.sum().item(), lambda: int(x.max()), lambda: bool(mask.any()), lambda: float(x[0])],
        "data_dependent": [lambda: x[mask], lambda: torch.nonzero(x), lambda: torch.unique(x),
                           lambda: torch.masked_select(x, mask)],
        "pageable_uploads": [lambda: x.to("meta"), lambda: torch.tensor([1, 2], device="meta"),
                             lambda: torch.empty(3, device="meta").copy_(x[:3])],
    }
    for kind, fns in cases.items():
        for fn in fns:
            counts = count_syncs(fn, cpu_scalars=True)  # the CPU stands in for the device
            assert getattr(counts, kind) == 1 and counts.total == 1, (kind, counts.as_dict())
    # Ordinary device work and host-side reads of host data are not syncs.
    quiet = count_syncs(lambda: (x * 2 + 1, x @ x, torch.where(mask, x, 0.0), x.numpy().sum(), x.tolist(),
                                 torch.full((3,), 7), torch.tensor([1, 2])), cpu_scalars=True)
    assert quiet.total == 0, quiet.as_dict()
    # Where a GPU does the device work, host-side reads of CPU tensors are not syncs.
    host = count_syncs(lambda: (x.sum().item(), x[mask], torch.nonzero(x)), cpu_scalars=False)
    assert host.total == 0, host.as_dict()


def test_counter_reports_where() -> None:
    with SyncCounter(cpu_scalars=True) as c:
        int(torch.ones(1))
    assert c.counts.where and "_local_scalar_dense" in c.counts.where[0]


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (4, 3, 24, 40), dtype=torch.uint8, generator=g)


def _calls(x: torch.Tensor, backend: str) -> dict:
    return {
        "jpeg(int)": lambda: degrade.jpeg(x, 50, backend=backend),
        "jpeg(tensor q)": lambda: degrade.jpeg(x, torch.tensor([30, 50, 75, 95]), backend=backend),
        "blur(float)": lambda: degrade.gaussian_blur(x, 2.0, backend=backend),
        "blur(tensor sigma, uint8)": lambda: degrade.gaussian_blur(x, torch.tensor([0.0, 1.0, 2.0, 3.0]),
                                                                   backend=backend, truncate_uint8=True),
        "low_resolution": lambda: degrade.low_resolution(x, 16, backend=backend),
        "apply(jpeg:30)": lambda: degrade.apply(x, "jpeg:30", backend=backend),
        "cnnspot(cpu generator)": lambda: degrade.cnnspot(x, 1.0, 1.0, generator=torch.Generator().manual_seed(1),
                                                          backend=backend),
    }


def test_degrade_calls_make_no_host_sync_on_the_device_path(images: torch.Tensor) -> None:
    """backend="torch" runs on the images' device; on the CPU box that device is the CPU, so every
    scalar read, data-dependent shape and device copy the call would make on a GPU is counted."""
    for name, call in _calls(images, "torch").items():
        call()  # fills the per-device caches
        counts = count_syncs(call, cpu_scalars=True)
        assert counts.total == 0, (name, counts.as_dict())


def test_triton_launchers_make_no_host_sync(images: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host side of the Triton backend (validation, tables, uploads, grids), with recording
    stand-ins for the compiled kernels so it runs without a GPU."""
    pytest.importorskip("triton")
    from genimage_fast.degrade import validate
    from genimage_fast.kernels import blur_triton, jpeg_triton

    launches: list[str] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        def __getitem__(self, grid):
            return lambda *args, **kw: launches.append(self.name)

    monkeypatch.setattr(validate, "interpreting", lambda: True)  # let backend="triton" take CPU tensors
    monkeypatch.setattr(jpeg_triton, "jpeg_round_trip_kernel", Recorder("jpeg"))
    monkeypatch.setattr(blur_triton, "blur_pass_kernel", Recorder("blur"))
    for name, call in _calls(images, "triton").items():
        if name == "low_resolution":  # no Triton kernel: backend="triton" is rejected (test_lowres_backend.py)
            continue
        call()
        launches.clear()
        counts = count_syncs(call, cpu_scalars=True)
        assert counts.total == 0, (name, counts.as_dict())
        if name.startswith(("jpeg", "blur", "apply", "cnnspot")):
            assert launches, name  # the kernels were launched, not bypassed
    assert count_syncs(lambda: degrade.cnnspot(images, 1.0, 1.0, generator=torch.Generator()), True).total == 0


def test_host_checks_still_reject_bad_values(images: torch.Tensor) -> None:
    for bad in (0, 101, torch.tensor([50, 0, 50, 50]), torch.tensor([50, 50, 50, 101])):
        with pytest.raises(ValueError, match="within 1..100"):
            degrade.jpeg(images, bad)


@requires_cuda
def test_degrade_calls_make_no_host_sync_on_cuda(images: torch.Tensor) -> None:
    x = images.cuda()
    calls = {f"{k} [triton]": v for k, v in _calls(x, "triton").items()}
    calls |= {f"{k} [torch]": v for k, v in _calls(x, "torch").items()}
    calls |= {
        "jpeg(cuda q)": lambda: degrade.jpeg(x, torch.tensor([30, 50, 75, 95], device="cuda")),
        "auto": lambda: degrade.cnnspot(x, generator=torch.Generator().manual_seed(2)),
    }
    for name, call in calls.items():
        call()  # Triton JIT and the per-device caches
        torch.cuda.synchronize()
        counts = count_syncs(call)
        assert counts.total == 0, (name, counts.as_dict())
        with cuda_sync_debug("error"):
            call()
    torch.cuda.synchronize()


@requires_cuda
def test_cuda_quality_tensor_is_clamped_not_read(images: torch.Tensor) -> None:
    x = images.cuda()
    out = degrade.jpeg(x, torch.tensor([0, 150, 1, 100], device="cuda"))
    ref = degrade.jpeg(images, torch.tensor([1, 100, 1, 100]), backend="torch")
    assert torch.equal(out.cpu(), ref)
    assert np.array_equal(out.cpu().numpy(), degrade.jpeg(x, torch.tensor([1, 100, 1, 100])).cpu().numpy())
