"""libjpeg's constants for the JPEG round trip, shared by the torch reference and the Triton kernel.

Everything here mirrors libjpeg-turbo (jcparam.c, jccolor.c, jdcolor.c) so that a simulated round
trip lands on the same integers PIL gets from `Image.save(..., quality=q)` + reopen.
"""

from __future__ import annotations

import torch

# Annex K tables, natural order, shared with the records layer's quality estimator.
from genimage_fast.jpeg_tables import STD_CHROMA_TABLE, STD_LUMA_TABLE

# Fixed-point colour conversion (SCALEBITS = 16), FIX(x) = round(x * 2^16) as in jccolor.c/jdcolor.c.
SCALEBITS = 16
ONE_HALF = 1 << (SCALEBITS - 1)
CBCR_OFFSET = 128 << SCALEBITS


def fix(x: float) -> int:
    return int(x * (1 << SCALEBITS) + 0.5)


# Encoder (RGB -> YCbCr): Y, Cb, Cr rows of (R, G, B) weights.
Y_R, Y_G, Y_B = fix(0.29900), fix(0.58700), fix(0.11400)
CB_R, CB_G, CB_B = -fix(0.16874), -fix(0.33126), fix(0.5)
CR_R, CR_G, CR_B = fix(0.5), -fix(0.41869), -fix(0.08131)
# Decoder (YCbCr -> RGB).
R_CR = fix(1.40200)
G_CB = -fix(0.34414)
G_CR = -fix(0.71414)
B_CB = fix(1.77200)

QUALITY_MIN, QUALITY_MAX = 1, 100


def quality_scale(quality: torch.Tensor) -> torch.Tensor:
    """libjpeg's jpeg_quality_scaling: q < 50 -> 5000 // q, else 200 - 2q (int tensor in, int out)."""
    q = quality.clamp(QUALITY_MIN, QUALITY_MAX).to(torch.int32)
    return torch.where(q < 50, 5000 // q, 200 - 2 * q)


def base_tables(device: torch.device | str = "cpu") -> torch.Tensor:
    """The two standard tables as int32 [2, 64] (luma, chroma)."""
    return torch.tensor([STD_LUMA_TABLE, STD_CHROMA_TABLE], dtype=torch.int32, device=device)


def quant_tables(quality: torch.Tensor) -> torch.Tensor:
    """int32 [N, 2, 64]: jpeg_set_quality(q, force_baseline=TRUE) tables for each sample's quality."""
    scale = quality_scale(quality).view(-1, 1, 1)
    table = (base_tables(quality.device) * scale + 50) // 100
    return table.clamp(1, 255)


