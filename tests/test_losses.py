"""Losses against timm's and torch's references and the plain formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.loss import JsdCrossEntropy, LabelSmoothingCrossEntropy

from genimage_fast.config import LossConfig
from genimage_fast.engine.losses import build_loss, splits_for
from genimage_fast.errors import GenImageError


@pytest.mark.parametrize("splits,smoothing,classes", [(3, 0.1, 2), (3, 0.0, 2), (2, 0.1, 5), (4, 0.2, 3)])
def test_jsd_ce_matches_timm(splits: int, smoothing: float, classes: int) -> None:
    torch.manual_seed(splits)
    logits = (torch.randn(4 * splits, classes) * 3).requires_grad_()
    targets = torch.randint(0, classes, (4,)).repeat(splits)
    cfg = LossConfig(name="jsd_ce", jsd_splits=splits, jsd_alpha=12.0, label_smoothing=smoothing)
    ours = build_loss(cfg)(logits, targets)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = JsdCrossEntropy(num_splits=splits, alpha=12, smoothing=smoothing)(logits, targets)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-6)


def test_jsd_term_vanishes_for_identical_views_and_grows_with_disagreement() -> None:
    clean = torch.randn(4, 2)
    targets = torch.tensor([0, 1, 1, 0]).repeat(3)
    loss = build_loss(LossConfig(name="jsd_ce", label_smoothing=0.0))
    same = loss(clean.repeat(3, 1), targets)
    torch.testing.assert_close(same, torch.nn.functional.cross_entropy(clean, targets[:4]))
    assert loss(torch.cat([clean, clean + 2.0 * torch.tensor([1.0, -1.0]), clean]), targets) > same
    with pytest.raises(ValueError, match="divisible"):
        loss(torch.randn(5, 2), torch.zeros(5, dtype=torch.long))


def test_ce_with_smoothing_matches_timm() -> None:
    logits, targets = torch.randn(6, 2), torch.randint(0, 2, (6,))
    ours = build_loss(LossConfig(name="ce", label_smoothing=0.1))(logits, targets)
    torch.testing.assert_close(ours, LabelSmoothingCrossEntropy(0.1)(logits, targets))


def test_bce_and_nll_match_their_formulas() -> None:
    logit = torch.tensor([[0.3], [-2.0], [4.0]])
    t = torch.tensor([1, 0, 0])
    p = 1 / (1 + np.exp(-logit.numpy()[:, 0]))
    ref = -np.mean(t.numpy() * np.log(p) + (1 - t.numpy()) * np.log(1 - p))
    assert build_loss(LossConfig(name="bce"))(logit, t).item() == pytest.approx(ref, rel=1e-6)
    log_probs = torch.log_softmax(torch.randn(3, 2), 1)
    ref_nll = -np.mean(log_probs.numpy()[np.arange(3), t.numpy()])
    assert build_loss(LossConfig(name="nll"))(log_probs, t).item() == pytest.approx(ref_nll, rel=1e-6)
    with pytest.raises(GenImageError, match="one logit"):
        build_loss(LossConfig(name="bce"))(torch.randn(3, 2), t)


def test_half_precision_outputs_reduce_in_float32() -> None:
    out = torch.randn(6, 2).bfloat16()
    loss = build_loss(LossConfig(name="jsd_ce", jsd_splits=3))(out, torch.zeros(6, dtype=torch.long))
    assert loss.dtype == torch.float32


def test_unknown_loss_and_bad_splits_are_user_errors() -> None:
    with pytest.raises(GenImageError, match="jsd_ce"):
        build_loss(LossConfig(name="jsd"))
    with pytest.raises(GenImageError, match="jsd_splits"):
        build_loss(LossConfig(name="jsd_ce", jsd_splits=1))
    assert splits_for(LossConfig(name="jsd_ce", jsd_splits=3)) == 3 and splits_for(LossConfig(name="ce")) == 1
