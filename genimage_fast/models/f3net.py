"""F3Net (Qian et al., ECCV 2020) as GenImage ran it: GenImage-Dataset/GenImage
`detector_codes/F3Net-main/f3net.py` (itself "mainly referenced from" yyk-wew/F3Net `models.py`,
mode 'Mix', before that repository's 2022 "losing dc component" fix).

Two Xception streams (timm's `legacy_xception`, the same network as the original's Cadene
`xception.py`):
- FAD (frequency-aware decomposition): a 2-D DCT of the whole image, 4 band masks over i + j, each
  plus a learnable `2·sigmoid(w) - 1` term, inverse DCT -> 12 channels into the FAD Xception. The
  band edges and the DC handling are `band_variant`:
    "genimage" (default; GenImage f3net.py:285-288, 406-407): low (0, S//16], middle (S//16, S//8],
      high (S//8, S], all (0, 2S] -- the start is exclusive, so no base mask contains the DC term
      (i + j = 0) and frequencies with i + j > S are in no band but "all";
    "yyk_dc_fix" (yyk-wew/F3Net commit 01942ca, models.py:51-54, 232-233): low [0, S//2.82],
      middle [S//2.82, S//2], high [S//2, 2S], all [0, 2S] -- start inclusive, DC kept.
- LFS (local frequency statistics): the grey image rescaled to 0..255, sliding 10x10 windows
  (stride 2, padding 4), DCT per window, log10|.|, M=6 learnable band filters (edges 20/M·i, same
  start rule as the FAD bands), each divided by its base's size, summed per window -> 6 channels of
  (S - 2)//2 + 1 (149 at 299) into an Xception whose conv1 has stride 1;
- MixBlocks (cross-attention between the streams) after Xception blocks 7 and 12; ReLU + global
  average pooling of both streams, concatenation (4096), dropout 0.2, a linear head.

Head: GenImage's f3net.py defaults to `num_classes=2` and ships no training code; the GenImage
supplement trains it with "binary cross entropy loss that comes inside a sigmoid", as yyk-wew's
`trainer.py` does with `num_classes=1` + `BCEWithLogitsLoss`, so the output here is one logit.
Input is normalised to [-1, 1] (mean = std = 0.5, the Xception checkpoint's settings). The DCT heads
run in float32 even under autocast (log10 of small coefficients is meaningless in bf16). The
constant DCT matrices and band masks are buffers rebuilt from the size, not checkpoint entries.
ImageNet init (`model.pretrained`) copies the RGB conv1 into the 12- and 6-channel input convs as
the original's `_init_xcep_fad` / `_init_xcep_lfs` do (see `genimage_fast.models.pretrained`).
"""

from __future__ import annotations

from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.kernels.dct import dct_matrix
from genimage_fast.models.common import HALF, Normalize
from genimage_fast.models.factory import ModelSpec, register_model

BAND_VARIANTS = ("genimage", "yyk_dc_fix")


def band_mask(start: float, end: float, size: int, include_start: bool) -> torch.Tensor:
    """1 where start < i + j <= end (GenImage's `generate_filter`; `include_start`: start <= i + j <= end,
    yyk-wew's fix), else 0."""
    s = torch.arange(size).unsqueeze(1) + torch.arange(size).unsqueeze(0)
    above = s >= start if include_start else s > start
    return (above & (s <= end)).float()


def fad_bands(size: int, variant: str) -> list[tuple[float, float]]:
    """The 4 FAD band edges (low, middle, high, all) of a band variant."""
    if variant == "genimage":
        return [(0, size // 16), (size // 16, size // 8), (size // 8, size), (0, size * 2)]
    return [(0, size // 2.82), (size // 2.82, size // 2), (size // 2, size * 2), (0, size * 2)]


def check_variant(variant: str) -> bool:
    """True when the variant keeps each band's start (DC included); unknown names are a GenImageError."""
    if variant not in BAND_VARIANTS:
        raise GenImageError(f"f3net band_variant {variant!r} is unknown; choose from: {', '.join(BAND_VARIANTS)}")
    return variant == "yyk_dc_fix"


class BandFilters(nn.Module):
    """K band masks, each plus a learnable term 2·sigmoid(w) - 1 (w ~ N(0, 0.1)); optional 1/|band|."""

    def __init__(self, bands: list[tuple[float, float]], size: int, include_start: bool, norm: bool = False) -> None:
        super().__init__()
        base = torch.stack([band_mask(lo, hi, size, include_start) for lo, hi in bands])
        self.register_buffer("base", base, persistent=False)
        self.register_buffer("scale", 1.0 / base.sum(dim=(1, 2)) if norm else torch.ones(len(bands)),
                             persistent=False)
        self.learnable = nn.Parameter(torch.empty(len(bands), size, size).normal_(0.0, 0.1))

    def forward(self) -> torch.Tensor:
        """The K filters [K, size, size]."""
        return (self.base + 2.0 * torch.sigmoid(self.learnable) - 1.0) * self.scale.view(-1, 1, 1)


class FADHead(nn.Module):
    """[N, 3, S, S] -> [N, 12, S, S]: image DCT, 4 band filters, inverse DCT (filter-major channels)."""

    def __init__(self, size: int, band_variant: str = "genimage") -> None:
        super().__init__()
        self.register_buffer("dct", dct_matrix(size), persistent=False)
        self.filters = BandFilters(fad_bands(size, band_variant), size, check_variant(band_variant))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float64: true fp32-or-better DCTs on every device, whatever TF32 setting the process has
        # (issue #17: fp32 matmuls on a GPU may run in TF32, a 10-bit mantissa).
        d = self.dct.double()
        freq = d @ x.double() @ d.T  # [N, 3, S, S]
        passed = freq.unsqueeze(1) * self.filters().double().unsqueeze(1)  # [N, 4, 3, S, S]
        out = d.T @ passed @ d
        return out.flatten(1, 2).to(x.dtype)


class LFSHead(nn.Module):
    """[N, 3, S, S] in [-1, 1] -> [N, M, S', S'], S' = (S - 2)//2 + 1: local log-DCT band statistics."""

    def __init__(self, window: int = 10, bands: int = 6, stride: int = 2, padding: int = 4,
                 band_variant: str = "genimage") -> None:
        super().__init__()
        self.window, self.stride, self.padding = window, stride, padding
        self.register_buffer("dct", dct_matrix(window), persistent=False)
        edges = [(window * 2.0 / bands * i, window * 2.0 / bands * (i + 1)) for i in range(bands)]
        self.filters = BandFilters(edges, window, check_variant(band_variant), norm=True)

    def output_size(self, size: int) -> int:
        return (size + 2 * self.padding - self.window) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
        gray = (gray + 1.0) * 122.5  # back to ~0..255, as the original
        patches = F.unfold(gray, self.window, padding=self.padding, stride=self.stride)  # [N, S*S, L]
        s = self.window
        patches = patches.transpose(1, 2).reshape(n, -1, s, s)  # [N, L, S, S]
        d = self.dct.double()  # float64, as in FADHead: log10 of small coefficients needs true precision
        logamp = torch.log10((d @ patches.double() @ d.T).abs() + 1e-15)
        # Sum of (log-amplitude x filter) over each window == one matmul against the flat filters.
        stats = (logamp.flatten(2) @ self.filters().double().flatten(1).T).to(x.dtype)  # [N, L, M]
        oh, ow = self.output_size(h), self.output_size(w)
        return stats.transpose(1, 2).reshape(n, -1, oh, ow)


class MixBlock(nn.Module):
    """Cross attention between the FAD and LFS feature maps (square, same size), as the original."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.FAD_query, self.LFS_query = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.FAD_key, self.LFS_key = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.FAD_gamma, self.LFS_gamma = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
        self.FAD_conv, self.LFS_conv = nn.Conv2d(c, c, 1, groups=c), nn.Conv2d(c, c, 1, groups=c)
        self.FAD_bn, self.LFS_bn = nn.BatchNorm2d(c), nn.BatchNorm2d(c)

    def forward(self, x_fad: torch.Tensor, x_lfs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x_fad.shape
        q = torch.cat([self.FAD_query(x_fad).reshape(-1, h, w), self.LFS_query(x_lfs).reshape(-1, h, w)], dim=2)
        k = torch.cat([self.FAD_key(x_fad).reshape(-1, h, w).transpose(1, 2),
                       self.LFS_key(x_lfs).reshape(-1, h, w).transpose(1, 2)], dim=1)
        attention = torch.softmax(torch.bmm(q, k), dim=-1).view(b, c, h, h)
        y_fad = x_fad + self.FAD_bn(self.FAD_conv(x_lfs * attention * (torch.sigmoid(self.LFS_gamma) * 2 - 1)))
        y_lfs = x_lfs + self.LFS_bn(self.LFS_conv(x_fad * attention * (torch.sigmoid(self.FAD_gamma) * 2 - 1)))
        return y_fad, y_lfs


def xception_body(in_chans: int, stride1: int) -> nn.Module:
    """timm legacy_xception without its classifier, conv1 taking `in_chans` at stride `stride1`."""
    body = timm.create_model("legacy_xception", pretrained=False, num_classes=0, in_chans=in_chans)
    if stride1 != 2:
        body.conv1 = nn.Conv2d(in_chans, 32, 3, stride1, 0, bias=False)
    return body


_STEM = ("conv1", "bn1", "act1", "conv2", "bn2", "act2")
_BLOCKS_1_7 = tuple(f"block{i}" for i in range(1, 8))
_BLOCKS_8_12 = tuple(f"block{i}" for i in range(8, 13))
_TAIL = ("conv3", "bn3", "act3", "conv4", "bn4", "act4")


class F3Net(nn.Module):
    def __init__(self, img_size: int = 299, num_classes: int = 1, lfs_window: int = 10, lfs_bands: int = 6,
                 dropout: float = 0.2, band_variant: str = "genimage") -> None:
        super().__init__()
        self.normalize = Normalize(HALF, HALF)
        self.img_size = img_size
        self.band_variant = band_variant
        self.fad_head = FADHead(img_size, band_variant)
        self.lfs_head = LFSHead(lfs_window, lfs_bands, band_variant=band_variant)
        self.fad_xcep = xception_body(12, stride1=2)
        self.lfs_xcep = xception_body(lfs_bands, stride1=1)
        self.mix_block7 = MixBlock(728)
        self.mix_block12 = MixBlock(1024)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * 2048, num_classes)
        self.head_prefixes = ("fc",)

    @staticmethod
    def _run(body: nn.Module, names: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = getattr(body, name)(x)
        return x

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two streams' inputs (FAD [N, 12, S, S], LFS [N, M, S', S']) for a [0, 1] image batch."""
        if x.shape[-2:] != (self.img_size, self.img_size):
            # The FAD filters are learnable per DCT coefficient, so the input size is part of the model.
            raise GenImageError(f"f3net is built for {self.img_size}x{self.img_size} input, got "
                                f"{x.shape[-2]}x{x.shape[-1]}: set data.image_size (or model.kwargs.img_size)")
        with torch.autocast(x.device.type, enabled=False):
            x = self.normalize(x.float())
            return self.fad_head(x), self.lfs_head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fad, lfs = self.heads(x)
        if x.is_contiguous(memory_format=torch.channels_last):  # keep the caller's memory format
            fad = fad.contiguous(memory_format=torch.channels_last)
            lfs = lfs.contiguous(memory_format=torch.channels_last)
        fad = self._run(self.fad_xcep, _STEM + _BLOCKS_1_7, fad)
        lfs = self._run(self.lfs_xcep, _STEM + _BLOCKS_1_7, lfs)
        fad, lfs = self.mix_block7(fad, lfs)
        fad = self._run(self.fad_xcep, _BLOCKS_8_12, fad)
        lfs = self._run(self.lfs_xcep, _BLOCKS_8_12, lfs)
        fad, lfs = self.mix_block12(fad, lfs)
        fad = self._run(self.fad_xcep, _TAIL, fad)  # ends in ReLU, as the original's _norm_fea
        lfs = self._run(self.lfs_xcep, _TAIL, lfs)
        features = torch.cat([fad.mean(dim=(2, 3)), lfs.mean(dim=(2, 3))], dim=1)
        return self.fc(self.dropout(features))


@register_model(ModelSpec("f3net", 299, "logit", "bce", "F3Net: FAD + LFS Xception streams with MixBlocks"))
def f3net(**overrides: Any) -> F3Net:
    return F3Net(**overrides)
