"""Training losses by name: ce, bce, nll, jsd_ce (`build_loss(loss_cfg) -> loss(output, targets)`).

Each loss takes the model's output and int64 labels (0 real, 1 fake) and returns a float32 scalar;
the output is upcast first so bf16/fp16 runs reduce in float32.
- ce: cross-entropy on 2 logits, with optional label smoothing (torch's, which equals timm's
  LabelSmoothingCrossEntropy).
- bce: BCEWithLogits on one logit (CNNSpot, F3Net); label smoothing moves targets towards 0.5.
- nll: negative log-likelihood on log-probabilities (GramNet's LogSoftmax head).
- jsd_ce: timm's JsdCrossEntropy (AugMix, Hendrycks et al. 2020): cross-entropy on the clean split
  plus alpha times the mean KL of each split's softmax to the clamped mixture, on split-major
  batches (clean first) as the augmentation produces them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from genimage_fast.config import LossConfig
from genimage_fast.errors import GenImageError
from genimage_fast.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[Callable[[LossConfig], LossFn]] = Registry("loss")


@LOSSES.register("ce")
def _ce(cfg: LossConfig) -> LossFn:
    def loss(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), targets, label_smoothing=cfg.label_smoothing)

    return loss


@LOSSES.register("bce")
def _bce(cfg: LossConfig) -> LossFn:
    def loss(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logit = output.float().reshape(output.shape[0], -1)
        if logit.shape[1] != 1:
            raise GenImageError(f"loss 'bce' needs a model with one logit, got {logit.shape[1]} outputs")
        t = targets.float() * (1.0 - cfg.label_smoothing) + 0.5 * cfg.label_smoothing
        return F.binary_cross_entropy_with_logits(logit[:, 0], t)

    return loss


@LOSSES.register("nll")
def _nll(cfg: LossConfig) -> LossFn:
    def loss(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(output.float(), targets)

    return loss


def jsd_cross_entropy(output: torch.Tensor, targets: torch.Tensor, num_splits: int = 3, alpha: float = 12.0,
                      smoothing: float = 0.1) -> torch.Tensor:
    """timm's JsdCrossEntropy: CE on the first (clean) split + alpha · mean_i KL(p_i || M) term."""
    if output.shape[0] % num_splits:
        raise ValueError(f"jsd_ce: batch of {output.shape[0]} is not divisible into {num_splits} splits")
    logits = output.float().chunk(num_splits)
    split = logits[0].shape[0]
    loss = F.cross_entropy(logits[0], targets[:split], label_smoothing=smoothing)
    probs = [lg.softmax(dim=1) for lg in logits]
    # Clamp the mixture so the KL cannot explode (timm clamps to [1e-7, 1]).
    log_mixture = torch.stack(probs).mean(dim=0).clamp(1e-7, 1.0).log()
    kl = sum(F.kl_div(log_mixture, p, reduction="batchmean") for p in probs)
    return loss + alpha * kl / num_splits


@LOSSES.register("jsd_ce")
def _jsd_ce(cfg: LossConfig) -> LossFn:
    if cfg.jsd_splits < 2:
        raise GenImageError(f"loss 'jsd_ce' needs loss.jsd_splits >= 2, got {cfg.jsd_splits}")

    def loss(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return jsd_cross_entropy(output, targets, cfg.jsd_splits, cfg.jsd_alpha, cfg.label_smoothing)

    return loss


def build_loss(loss_cfg: LossConfig) -> LossFn:
    """The loss named by `loss_cfg.name`, configured from the rest of the section."""
    return LOSSES.get(loss_cfg.name)(loss_cfg)


def splits_for(loss_cfg: LossConfig) -> int:
    """How many views per image the loss expects in a batch (jsd_ce: jsd_splits, else 1)."""
    return loss_cfg.jsd_splits if loss_cfg.name == "jsd_ce" else 1
