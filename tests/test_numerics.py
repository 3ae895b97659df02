"""Issue #17 item 3: GPU numerics equal the CPU's intent. TF32 only in fp32 runs (the backend flags),
F3Net's DCT heads out of TF32's reach (their matmuls run in float64), GramNet's Gram matrix in float32
under bf16 autocast (its docstring's promise; bmm would otherwise return bf16)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from genimage_fast.engine.precision import configure_matmul_precision, float32_matmul
from genimage_fast.engine.train import _configure_backends
from genimage_fast.models.f3net import FADHead, LFSHead
from genimage_fast.models.gramnet import gram_matrix
from tests.conftest import requires_cuda


@pytest.fixture
def restore_backends():
    precision, bench = torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark
    yield
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.benchmark = bench


def test_tf32_only_in_fp32_runs_on_cuda(restore_backends) -> None:
    cuda = torch.device("cuda")  # only the flags are set: no GPU needed
    torch.set_float32_matmul_precision("high")  # e.g. left over from an earlier fp32 run in the process
    for precision in ("bf16", "fp16"):
        assert configure_matmul_precision(precision, cuda) == "highest"
        assert torch.get_float32_matmul_precision() == "highest"
        assert not torch.backends.cuda.matmul.allow_tf32
    assert configure_matmul_precision("fp32", cuda) == "high"
    assert torch.backends.cuda.matmul.allow_tf32
    torch.set_float32_matmul_precision("highest")
    assert configure_matmul_precision("fp32", torch.device("cpu")) is None  # the CPU is left alone
    assert torch.get_float32_matmul_precision() == "highest"
    with pytest.raises(ValueError):
        configure_matmul_precision("tf32", cuda)


def test_trainer_backends_follow_the_run_precision(restore_backends) -> None:
    _configure_backends(torch.device("cuda"), "bf16")
    assert torch.backends.cudnn.benchmark and not torch.backends.cuda.matmul.allow_tf32
    _configure_backends(torch.device("cuda"), "fp32")
    assert torch.backends.cuda.matmul.allow_tf32


def test_float32_matmul_is_scoped(restore_backends) -> None:
    torch.set_float32_matmul_precision("high")
    with float32_matmul("highest"):
        assert not torch.backends.cuda.matmul.allow_tf32
    assert torch.get_float32_matmul_precision() == "high"
    with pytest.raises(RuntimeError), float32_matmul("highest"):
        raise RuntimeError("restored on errors too")
    assert torch.get_float32_matmul_precision() == "high"


class MatmulDtypes(TorchDispatchMode):
    """Records the input dtypes of every matrix product dispatched (what TF32 would apply to)."""

    PRODUCTS = {torch.ops.aten.mm.default, torch.ops.aten.bmm.default, torch.ops.aten.addmm.default,
                torch.ops.aten.baddbmm.default}

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: list[torch.dtype] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func in self.PRODUCTS:
            self.dtypes.append(args[-1].dtype)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("head", [FADHead(32), LFSHead()])
def test_f3net_dct_heads_multiply_in_float64(head) -> None:
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with MatmulDtypes() as seen:
        out = head(x)
    assert seen.dtypes and set(seen.dtypes) == {torch.float64}, seen.dtypes
    assert out.dtype == torch.float32


def test_lfs_head_matches_a_float64_dct_of_each_window() -> None:
    """Independent reference: scipy's orthonormal 2-D DCT-II of each 10x10 window, log10 |.|."""
    import numpy as np
    from scipy.fft import dctn

    head = LFSHead()
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    out = head(x)[0].double()  # [M, S', S']
    gray = (0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2]).double().numpy()
    gray = np.pad((gray + 1.0) * 122.5, 4)
    filters = head.filters().detach().double().numpy()  # [M, 10, 10]
    oy, ox = 3, 5  # one output position, window at (2*oy, 2*ox) of the padded image
    logamp = np.log10(np.abs(dctn(gray[2 * oy:2 * oy + 10, 2 * ox:2 * ox + 10], type=2, norm="ortho")) + 1e-15)
    expected = (logamp[None] * filters).sum(axis=(1, 2))
    np.testing.assert_allclose(out[:, oy, ox].detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_gram_matrix_stays_float32_under_bf16_autocast() -> None:
    f = torch.randn(2, 8, 12, 12).to(torch.bfloat16)  # features arrive in bf16 from autocast's convs
    exact = torch.einsum("nchw,ndhw->ncd", f.double(), f.double()) / (8 * 12 * 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(f)
    assert g.dtype == torch.float32 and g.shape == (2, 1, 8, 8)
    torch.testing.assert_close(g[:, 0].double(), exact, rtol=1e-5, atol=1e-6)  # bf16 would be ~1e-2 off


@requires_cuda
def test_cuda_f3net_heads_and_gram_ignore_tf32(restore_backends) -> None:
    x = (torch.rand(2, 3, 64, 64, device="cuda") * 2 - 1)
    head = LFSHead().cuda()
    with float32_matmul("highest"):
        ref = head(x)
    with float32_matmul("high"):
        tf32 = head(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            g = gram_matrix(torch.randn(2, 8, 16, 16, device="cuda"))
    torch.testing.assert_close(tf32, ref, rtol=1e-6, atol=1e-6)
    assert g.dtype == torch.float32


def test_model_throughput_measures_what_training_runs(restore_backends) -> None:
    """models/throughput.py: cuDNN autotuning on CUDA (as the trainer), bs 256 there, 64 on the CPU."""
    from genimage_fast.models.throughput import DEFAULT_BATCH, configure_cuda_backends, measure_fwd_bwd

    torch.backends.cudnn.benchmark = False
    assert configure_cuda_backends(torch.device("cuda")) and torch.backends.cudnn.benchmark
    assert not configure_cuda_backends(torch.device("cpu"))
    assert DEFAULT_BATCH == {"cuda": 256, "cpu": 64}
    m = measure_fwd_bwd("demo_cnn", device="cpu", precision="fp32", iters=1, warmup=0, image_size=16)
    assert m.extra["batch"] == 64 and m.extra["cudnn_benchmark"] is False and m.images == 64
