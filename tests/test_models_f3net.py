"""F3Net pieces against independent references: scipy's DCT, a numpy sliding-window LFS, the originals'
band definitions, and the parameter count of the original architecture.

References quoted: "GenImage f3net.py" = GenImage-Dataset/GenImage detector_codes/F3Net-main/f3net.py
(the default, band_variant "genimage"); "yyk models.py" = yyk-wew/F3Net models.py at commit 01942ca
("Fixed bugs of losing dc component", band_variant "yyk_dc_fix")."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import timm
import torch
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.kernels.dct import dct_matrix
from genimage_fast.models import create_model
from genimage_fast.models.common import count_parameters
from genimage_fast.models.f3net import FADHead, LFSHead, MixBlock


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def band(start: float, end: float, size: int, variant: str) -> np.ndarray:
    """generate_filter, verbatim per variant."""
    if variant == "genimage":  # GenImage f3net.py:406-407
        rows = [[0. if i + j > end or i + j <= start else 1. for j in range(size)] for i in range(size)]
    else:  # yyk models.py:232-233
        rows = [[0. if i + j > end or i + j < start else 1. for j in range(size)] for i in range(size)]
    return np.array(rows)


def fad_edges(size: int, variant: str) -> list[tuple[float, float]]:
    if variant == "genimage":  # GenImage f3net.py:285-288
        return [(0, size // 16), (size // 16, size // 8), (size // 8, size), (0, size * 2)]
    return [(0, size // 2.82), (size // 2.82, size // 2), (size // 2, size * 2), (0, size * 2)]  # yyk models.py:51-54


def norm_sigma(x: np.ndarray) -> np.ndarray:
    return 2. / (1. + np.exp(-x)) - 1.  # GenImage f3net.py:409-410 (2·sigmoid(x) - 1)


VARIANTS = ["genimage", "yyk_dc_fix"]


@pytest.mark.parametrize("size", [7, 8, 10])  # 8: the JPEG kernels' blocks; 10: F3Net's LFS window
def test_dct_matrix_is_scipys_orthonormal_dct(size: int) -> None:
    x = np.random.default_rng(0).normal(size=(size, 5))
    np.testing.assert_allclose(dct_matrix(size).double().numpy() @ x, scipy.fft.dct(x, type=2, norm="ortho", axis=0),
                               atol=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_fad_bands_match_scipy_dct_filtering(variant: str) -> None:
    size = 40  # genimage edges 2, 5, 40; yyk edges 14, 20, 80
    head = FADHead(size, variant)
    with torch.no_grad():
        head.filters.learnable.zero_()  # 2·sigmoid(0) - 1 = 0: the filters are the base bands
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        got = head(x).numpy()
    assert got.shape == (2, 12, size, size)
    freq = scipy.fft.dctn(x.double().numpy(), norm="ortho", axes=(-2, -1))
    for k, (lo, hi) in enumerate(fad_edges(size, variant)):
        ref = scipy.fft.idctn(freq * band(lo, hi, size, variant), norm="ortho", axes=(-2, -1))
        np.testing.assert_allclose(got[:, 3 * k:3 * k + 3], ref, atol=1e-4)
    # The "all" band: yyk's fix returns the image; GenImage's loses the DC term, i.e. each plane's mean
    # times the constant DCT basis (so the output is the image minus its mean).
    dc_removed = x.numpy() - x.numpy().mean(axis=(-2, -1), keepdims=True)
    np.testing.assert_allclose(got[:, 9:12], x.numpy() if variant == "yyk_dc_fix" else dc_removed, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_fad_with_learnable_terms_matches_the_original_filter(variant: str) -> None:
    # GenImage f3net.py:264-274 (Filter.forward: x * (base + norm_sigma(learnable))), 292-303 (FAD_Head).
    size = 24
    head = FADHead(size, variant)
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        got = head(x).double().numpy()
    learn = head.filters.learnable.detach().double().numpy()
    freq = scipy.fft.dctn(x.double().numpy(), norm="ortho", axes=(-2, -1))
    for k, (lo, hi) in enumerate(fad_edges(size, variant)):
        filt = band(lo, hi, size, variant) + norm_sigma(learn[k])
        ref = scipy.fft.idctn(freq * filt, norm="ortho", axes=(-2, -1))
        np.testing.assert_allclose(got[:, 3 * k:3 * k + 3], ref, atol=1e-4)


def test_the_variants_differ_where_the_originals_do() -> None:
    # At 299: GenImage low band (0, 18], yyk low band [0, 106]; only yyk's contains the DC term.
    genimage, yyk = FADHead(299, "genimage").filters.base, FADHead(299, "yyk_dc_fix").filters.base
    np.testing.assert_array_equal(genimage.numpy(), np.stack([band(lo, hi, 299, "genimage")
                                                              for lo, hi in fad_edges(299, "genimage")]))
    np.testing.assert_array_equal(yyk.numpy(), np.stack([band(lo, hi, 299, "yyk_dc_fix")
                                                         for lo, hi in fad_edges(299, "yyk_dc_fix")]))
    assert genimage[:, 0, 0].sum() == 0 and yyk[0, 0, 0] == 1 and yyk[3, 0, 0] == 1
    assert genimage[0].sum() == sum(1 for i in range(299) for j in range(299) if 0 < i + j <= 18)
    assert create_model("f3net", img_size=32).band_variant == "genimage"  # the default reproduces GenImage
    with pytest.raises(GenImageError, match="yyk_dc_fix"):
        create_model("f3net", img_size=32, band_variant="fixed")


def lfs_reference(x: np.ndarray, variant: str, window: int = 10, m_bands: int = 6) -> np.ndarray:
    """GenImage f3net.py:317-355 (LFS_Head: unfold 10x10 stride 2 pad 4, DCT, log10|.|+1e-15, Filter with
    norm=True: x * base / sum(base)) on [N, 3, H, W] in [-1, 1] with zero learnable terms, in numpy."""
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2] + 1.0) * 122.5
    padded = np.pad(gray, ((0, 0), (4, 4), (4, 4)))
    wins = np.lib.stride_tricks.sliding_window_view(padded, (window, window), axis=(1, 2))[:, ::2, ::2]
    logamp = np.log10(np.abs(scipy.fft.dctn(wins, norm="ortho", axes=(-2, -1))) + 1e-15)
    out = []
    for i in range(m_bands):
        f = band(window * 2.0 / m_bands * i, window * 2.0 / m_bands * (i + 1), window, variant)
        out.append((logamp * f / f.sum()).sum(axis=(-2, -1)))
    return np.stack(out, axis=1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lfs_matches_a_sliding_window_numpy_reference(variant: str) -> None:
    head = LFSHead(band_variant=variant)
    with torch.no_grad():
        head.filters.learnable.zero_()
    # A fixed input: log10|c| of a DCT coefficient within ~1e-3 of zero amplifies float32 rounding in the
    # grey conversion past the tolerance (unseeded, about 1 draw in 20 did).
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        got = head(x).double().numpy()
    ref = lfs_reference(x.double().numpy(), variant)
    assert got.shape == ref.shape == (2, 6, 12, 12)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_f3net_stream_inputs_at_299() -> None:
    model = create_model("f3net")
    fad, lfs = model.heads(torch.rand(1, 3, 299, 299))
    assert fad.shape == (1, 12, 299, 299) and lfs.shape == (1, 6, 149, 149)
    with pytest.raises(GenImageError, match="299"):
        model.heads(torch.rand(1, 3, 224, 224))


def test_mixblock_cross_term_vanishes_while_gamma_is_zero() -> None:
    # Both gammas start at 0 and 2·sigmoid(0) - 1 = 0, so the other stream cannot contribute: with
    # the depthwise convs' biases at 0 (and fresh BN stats) each stream passes through unchanged.
    block = MixBlock(8).eval()
    with torch.no_grad():
        block.FAD_conv.bias.zero_()
        block.LFS_conv.bias.zero_()
    a, b = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    ya, yb = block(a, b)
    torch.testing.assert_close(ya, a)
    torch.testing.assert_close(yb, b)
    block.FAD_gamma.data.fill_(3.0)
    assert not torch.allclose(block(a, b)[1], b)


def test_f3net_parameter_count_matches_the_original_architecture() -> None:
    # models.py (mode 'Mix'): two Xception bodies whose conv1 is replaced (12 -> 32 stride 2 for FAD,
    # 6 -> 32 stride 1 for LFS), FAD: 4 learnable 299x299 filters, LFS: 6 learnable 10x10 filters,
    # MixBlock(728) and MixBlock(1024), fc = Linear(4096, 1). Non-trainable bases/DCTs are not counted.
    xception = n_params(timm.create_model("legacy_xception", pretrained=False, num_classes=0))
    conv1_rgb = n_params(nn.Conv2d(3, 32, 3, bias=False))

    def mixblock(c: int) -> int:
        convs = 4 * n_params(nn.Conv2d(c, c, 1)) + 2 * n_params(nn.Conv2d(c, c, 1, groups=c))
        return convs + 2 * n_params(nn.BatchNorm2d(c)) + 2  # + FAD_gamma, LFS_gamma

    expected = (2 * (xception - conv1_rgb) + n_params(nn.Conv2d(12, 32, 3, bias=False))
                + n_params(nn.Conv2d(6, 32, 3, bias=False)) + 4 * 299 * 299 + 6 * 10 * 10
                + mixblock(728) + mixblock(1024) + n_params(nn.Linear(4096, 1)))
    assert count_parameters(create_model("f3net")) == expected
