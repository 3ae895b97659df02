"""Batch-wide Mixup / CutMix on the device, as timm's `timm.data.Mixup` in mode 'batch' (DeiT, Swin).

Per batch (timm mixup.py `_params_per_batch`, `_mix_batch`, `cutmix_bbox_and_lam`, `mixup_target`):
with probability `prob` the batch is mixed; with both alphas on, CutMix is chosen with probability
`switch_prob`; lam ~ Beta(alpha, alpha). Mixup blends each image with the batch flipped
(x·lam + x.flip(0)·(1 - lam)); CutMix pastes one box of the flipped batch (side sqrt(1 - lam) of the
image, centre uniform, clipped) and corrects lam to the pasted area. Targets become
lam·onehot_s(y) + (1 - lam)·onehot_s(y.flip(0)) with timm's label smoothing (off = s / C,
on = 1 - s + off), trained with soft-target cross-entropy (timm SoftTargetCrossEntropy).

The draws are host scalars from a legacy numpy RandomState (the same calls, in the same order, as
timm makes on numpy's global generator, so a seed gives timm's exact batch); nothing is read back
from the device, so the step stays free of host syncs. The trainer reseeds it per micro-batch from
(seed, rank, step, micro-batch), so a resumed run needs no saved state.
Mixing commutes with the model's per-channel normalisation, so mixing our [0, 1] input equals
timm's mixing of normalised input.
"""

from __future__ import annotations

import numpy as np
import torch

from genimage_fast.config import AugConfig, LossConfig
from genimage_fast.errors import GenImageError


class DeviceMixup:
    """Callable (x float [N,C,H,W], labels int64 [N]) -> (mixed x, soft targets float [N, classes])."""

    def __init__(self, mixup_alpha: float, cutmix_alpha: float, prob: float = 1.0, switch_prob: float = 0.5,
                 label_smoothing: float = 0.1, num_classes: int = 2, seed: int = 0, odd_box_fix: bool = False) -> None:
        """odd_box_fix: timm >= 0.9's box (upper edge + (cut + 1) // 2); default = timm 0.6.12 / 0.3.2's
        (upper edge + cut // 2, an odd cut one pixel short), the code GenImage ran."""
        if mixup_alpha < 0 or cutmix_alpha < 0 or not 0 <= prob <= 1 or not 0 <= switch_prob <= 1:
            raise GenImageError("aug.mixup / aug.cutmix must be >= 0 and mixup_prob / mixup_switch_prob in [0, 1]")
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.label_smoothing, self.num_classes = label_smoothing, num_classes
        self.rng = np.random.RandomState(seed)
        self.odd_box_fix = odd_box_fix

    def params(self) -> tuple[float, bool]:
        """timm `_params_per_batch` (mode 'batch'), drawing in timm's order."""
        lam, use_cutmix = 1.0, False
        if self.rng.rand() < self.prob:
            if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
                use_cutmix = bool(self.rng.rand() < self.switch_prob)
                alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
                lam = float(self.rng.beta(alpha, alpha))
            elif self.mixup_alpha > 0:
                lam = float(self.rng.beta(self.mixup_alpha, self.mixup_alpha))
            elif self.cutmix_alpha > 0:
                use_cutmix = True
                lam = float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha))
        return lam, use_cutmix

    def box(self, height: int, width: int, lam: float) -> tuple[tuple[int, int, int, int], float]:
        """timm `rand_bbox` (margin 0; timm 0.6.12 mixup.py:41-50) + `cutmix_bbox_and_lam(correct_lam=True)`."""
        ratio = np.sqrt(1 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy = self.rng.randint(0, height)
        cx = self.rng.randint(0, width)
        up_h, up_w = ((cut_h + 1) // 2, (cut_w + 1) // 2) if self.odd_box_fix else (cut_h // 2, cut_w // 2)
        yl, yh = int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + up_h, 0, height))
        xl, xh = int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + up_w, 0, width))
        lam = 1.0 - (yh - yl) * (xh - xl) / float(height * width)
        return (yl, yh, xl, xh), lam

    def targets(self, labels: torch.Tensor, lam: float) -> torch.Tensor:
        """timm `mixup_target`: smoothed one-hots of y and y.flip(0), blended by lam (on the device)."""
        off = self.label_smoothing / self.num_classes
        on = 1.0 - self.label_smoothing + off
        hot = torch.full((labels.shape[0], self.num_classes), off, device=labels.device)
        y1 = hot.scatter(1, labels.long().view(-1, 1), on)
        y2 = hot.scatter(1, labels.flip(0).long().view(-1, 1), on)
        return y1 * lam + y2 * (1.0 - lam)

    def __call__(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] % 2:
            raise GenImageError(f"Mixup/CutMix needs an even batch (timm asserts it), got {x.shape[0]}")
        lam, use_cutmix = self.params()
        if lam != 1.0:
            if use_cutmix:
                (yl, yh, xl, xh), lam = self.box(x.shape[-2], x.shape[-1], lam)
                x = x.clone()
                x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
            else:
                x = x * lam + x.flip(0) * (1.0 - lam)
        return x, self.targets(labels, lam)

    def reseed(self, seed: int | list[int]) -> None:
        """Restart the draws (np.random.seed semantics; the trainer seeds each micro-batch)."""
        self.rng.seed(seed)


def soft_target_cross_entropy(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """timm SoftTargetCrossEntropy: mean over the batch of sum(-target · log_softmax(output))."""
    return torch.sum(-targets * torch.log_softmax(output.float(), dim=-1), dim=-1).mean()


def build_mixup(aug: AugConfig, loss: LossConfig, num_classes: int, seed: int) -> DeviceMixup | None:
    """DeiT/Swin: mixup active when either alpha > 0; the loss's label smoothing moves into the targets."""
    if aug.mixup <= 0 and aug.cutmix <= 0:
        return None
    if loss.name != "ce":
        raise GenImageError(f"aug.mixup / aug.cutmix need loss.name 'ce' (soft targets), got {loss.name!r}")
    return DeviceMixup(aug.mixup, aug.cutmix, aug.mixup_prob, aug.mixup_switch_prob, loss.label_smoothing,
                       num_classes, seed)
