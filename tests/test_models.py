"""Model registry, forward/backward of every detector, parameter counts against reference architectures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
from torch import nn

from genimage_fast.config import load_config
from genimage_fast.errors import GenImageError
from genimage_fast.models import create_model, fake_probability, get_model_spec, list_models, load_pretrained
from genimage_fast.models.common import NormalizedNet, count_parameters

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PAPER_MODELS = ["resnet50", "deit_s", "swin_t", "cnnspot", "spec", "f3net", "gramnet"]
# Small inputs keep the CPU suite fast (the heavy test runs every detector at its recipe size). The
# transformers get a smaller token grid (DeiT) / window (Swin) for that; counts are checked at full size.
SMALL = {"resnet50": 32, "cnnspot": 32, "spec": 32, "gramnet": 32, "demo_cnn": 32, "f3net": 32,
         "deit_s": 32, "swin_t": 64}
SMALL_KWARGS = {"f3net": {"img_size": 32}, "deit_s": {"img_size": 32}, "swin_t": {"img_size": 64, "window_size": 2}}
OUT_DIM = {"logits": 2, "logit": 1, "log_probs": 2}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_registry_lists_every_detector_and_rejects_unknown_names() -> None:
    assert set(PAPER_MODELS + ["demo_cnn", "npr", "univfd"]) == set(list_models())
    with pytest.raises(GenImageError, match="resnet50"):
        create_model("resnet5")
    with pytest.raises(GenImageError, match="bad option"):
        create_model("demo_cnn", no_such_option=1)


@pytest.mark.parametrize("name", PAPER_MODELS + ["demo_cnn"])
def test_forward_backward_small_batch(name: str) -> None:
    torch.manual_seed(0)
    spec = get_model_spec(name)
    size = SMALL[name]
    model = create_model(name, **SMALL_KWARGS.get(name, {})).train()
    x = torch.rand(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, OUT_DIM[spec.output]) and torch.isfinite(out).all()
    if spec.output == "log_probs":  # LogSoftmax head: probabilities sum to one
        torch.testing.assert_close(out.exp().sum(1), torch.ones(2))
    out.float().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_models_accept_channels_last_and_keep_the_same_answer() -> None:
    for name in ("spec", "gramnet"):
        model = create_model(name).eval()
        x = torch.rand(2, 3, 64, 64)
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,arch", [("resnet50", "resnet50"), ("deit_s", "deit_small_patch16_224"),
                                       ("swin_t", "swin_tiny_patch4_window7_224")])
def test_timm_detectors_match_timm_architectures(name: str, arch: str) -> None:
    model = create_model(name)
    reference = timm.create_model(arch, pretrained=False, num_classes=2)
    assert count_parameters(model) == n_params(reference)
    # Same module tree (names and shapes), so timm checkpoints load.
    own = {k.removeprefix("net."): v.shape for k, v in model.state_dict().items()}
    assert own == {k: v.shape for k, v in reference.state_dict().items()}


def test_cnnspot_is_torchvision_resnet50_with_one_logit() -> None:
    # CNNDetection networks/resnet.py is torchvision's ResNet; trainer.py sets fc = Linear(2048, 1).
    assert count_parameters(create_model("cnnspot")) == n_params(torchvision.models.resnet50(num_classes=1))


def test_spec_is_torchvision_resnet34_with_two_classes() -> None:
    # AutoGAN: models.resnet34(); model.fc = nn.Linear(num_ftrs, 2).
    assert count_parameters(create_model("spec")) == n_params(torchvision.models.resnet34(num_classes=2))


def _autogan_reference(img: np.ndarray) -> np.ndarray:
    """GAN_Detection_Train.py's fft branch on one HWC float image in [0, 1]."""
    out = np.empty_like(img)
    for i in range(3):
        f = np.log(np.abs(np.fft.fft2(img[:, :, i])) + 1e-3)
        lo, hi = np.percentile(f, 5), np.percentile(f, 95)
        f = ((f - lo) / (hi - lo) - 0.5) * 2
        out[:, :, i] = np.clip(f, -1, 1)
    return out


def test_spec_feeds_autogans_normalised_spectrum() -> None:
    model = create_model("spec")
    x = torch.randint(0, 256, (2, 3, 32, 32)).float() / 255
    got = model.spectrum(x)
    for i in range(2):
        ref = _autogan_reference(x[i].permute(1, 2, 0).double().numpy())
        np.testing.assert_allclose(got[i].permute(1, 2, 0).numpy(), ref, atol=2e-3)


def test_gramnet_parameter_count_is_resnet18_plus_six_gram_branches_plus_head() -> None:
    # resnet18_gram.py: torchvision ResNet-18 body (its fc is commented out), conv_inter*_0 = conv3x3(c, 32)
    # + BN(32); g*_fc1 = conv3x3(1, 16) + BN(16); g*_fc2 = conv3x3(16, 32) + BN(32); ScaleLayer (1);
    # fcnewr = Linear(704, 512), Linear(512, 2).
    body = torchvision.models.resnet18()
    body.fc = nn.Identity()

    def branch(c: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c, 32, 3, bias=False), nn.BatchNorm2d(32), nn.Conv2d(1, 16, 3, bias=False),
                             nn.BatchNorm2d(16), nn.Conv2d(16, 32, 3, bias=False), nn.BatchNorm2d(32))

    branches = sum(n_params(branch(c)) for c in (3, 64, 64, 64, 128, 256))
    head = n_params(nn.Linear(704, 512)) + n_params(nn.Linear(512, 2))
    assert count_parameters(create_model("gramnet")) == n_params(body) + branches + 1 + head


def test_gram_matrix_matches_einsum() -> None:
    from genimage_fast.models.gramnet import gram_matrix

    x = torch.randn(2, 5, 4, 3)
    ref = np.einsum("nchw,ndhw->ncd", x.numpy(), x.numpy()) / (5 * 4 * 3)
    np.testing.assert_allclose(gram_matrix(x)[:, 0].numpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_recipe_loads_and_builds_its_model(name: str) -> None:
    cfg = load_config(RECIPES / f"{name}.yaml")
    assert cfg.model.name == name and cfg.recipe == name
    assert cfg.data.image_size == get_model_spec(name).input_size
    if name != "f3net":  # f3net is built at 299 by the heavy test
        assert isinstance(create_model(cfg.model.name, **cfg.model.kwargs), nn.Module)


# Supplement B's stated settings per detector: (optimizer, lr, epochs, batch size, random erase, loss).
SUPPLEMENT_B = {
    "resnet50": ("sgd", 0.05, 200, 64, 0.6, "jsd_ce"),
    "deit_s": ("adamw", 2e-4, 300, 256, 0.25, "ce"),
    "swin_t": ("adamw", 5e-4, 300, 128, 0.25, "ce"),
    "cnnspot": ("adam", 5e-4, 30, 64, 0.0, "bce"),
    "spec": ("sgd", 2e-4, 64, 64, 0.0, "ce"),
    "f3net": ("adam", 2e-4, 5, 12, 0.0, "bce"),
    "gramnet": ("adam", 1e-5, 5, 14, 0.0, "nll"),
}


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_recipe_settings_follow_supplement_b(name: str) -> None:
    from genimage_fast.engine.augment import build_train_augment
    from genimage_fast.engine.losses import build_loss

    cfg = load_config(RECIPES / f"{name}.yaml")
    # supp B's epochs are the training epochs; timm's --cooldown-epochs run on top (resnet50: 200 + 10)
    epochs = cfg.train.epochs - cfg.schedule.cooldown_epochs
    got = (cfg.optim.name, cfg.optim.lr, epochs, cfg.train.batch_size, cfg.aug.random_erase, cfg.loss.name)
    assert got == pytest.approx(SUPPLEMENT_B[name])
    assert cfg.loss.name == get_model_spec(name).default_loss
    build_loss(cfg.loss)
    build_train_augment(cfg.aug, cfg.loss)


def test_recipe_extras_from_the_supplement_and_design() -> None:
    deit, swin = load_config(RECIPES / "deit_s.yaml"), load_config(RECIPES / "swin_t.yaml")
    assert (deit.schedule.warmup_epochs, deit.schedule.warmup_lr) == (5, 1e-6)
    assert (swin.schedule.warmup_epochs, swin.schedule.warmup_lr) == (20, 5e-7)
    r50 = load_config(RECIPES / "resnet50.yaml")
    assert (r50.schedule.name, r50.loss.jsd_splits, r50.aug.randaugment.split("-")[1]) == ("cosine", 3, "m9")
    cnn = load_config(RECIPES / "cnnspot.yaml")
    # CNNSpot's blur + JPEG run in its train transform, before the crop (CNNDetection data/datasets.py)
    assert cnn.data.train_transform == "cnnspot" and (cnn.aug.blur_prob, cnn.aug.jpeg_prob) == (0.0, 0.0)
    assert cnn.data.transform_options == {"blur_prob": 0.5, "blur_sig": [0.0, 3.0], "jpg_prob": 0.5,
                                          "jpg_method": "cv2,pil", "jpg_qual": [30, 100]}
    spec, gram = load_config(RECIPES / "spec.yaml"), load_config(RECIPES / "gramnet.yaml")
    assert spec.optim.weight_decay == 1e-4 and gram.optim.weight_decay == 1e-4


def test_fake_probability_per_output_kind() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    torch.testing.assert_close(fake_probability(logits, "logits"), torch.softmax(logits, 1)[:, 1])
    torch.testing.assert_close(fake_probability(logits.log_softmax(1), "log_probs"), torch.softmax(logits, 1)[:, 1])
    logit = torch.tensor([[0.0], [2.0]])
    torch.testing.assert_close(fake_probability(logit, "logit"), torch.tensor([0.5, 1 / (1 + np.exp(-2.0))],
                                                                              dtype=torch.float32))
    with pytest.raises(GenImageError):
        fake_probability(logit, "scores")


def test_pretrained_loads_a_bare_backbone_and_skips_only_the_head(tmp_path: Path) -> None:
    source = timm.create_model("resnet10t", pretrained=False, num_classes=1000)
    path = tmp_path / "backbone.pt"
    torch.save(source.state_dict(), path)
    model = NormalizedNet(timm.create_model("resnet10t", pretrained=False, num_classes=2), head="fc")
    head_before = model.net.fc.weight.clone()
    load_pretrained(model, path)
    torch.testing.assert_close(model.net.conv1[0].weight, source.conv1[0].weight)
    torch.testing.assert_close(model.net.fc.weight, head_before)  # 1000-way head skipped


def test_pretrained_roundtrip_and_mismatch_errors(tmp_path: Path) -> None:
    trained = create_model("demo_cnn")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    path = tmp_path / "demo.pt"
    torch.save({"model": trained.state_dict(), "epoch": 3}, path)  # our checkpoint layout
    loaded = create_model("demo_cnn", pretrained=str(path))
    for a, b in zip(loaded.state_dict().values(), trained.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    torch.save(create_model("demo_cnn", widths=[8, 16, 32, 48]).state_dict(), tmp_path / "other.pt")
    with pytest.raises(GenImageError, match="wrong shape"):
        create_model("demo_cnn", pretrained=str(tmp_path / "other.pt"))
    with pytest.raises(GenImageError, match="not found"):
        create_model("demo_cnn", pretrained=str(tmp_path / "missing.pt"))


@pytest.mark.heavy
@pytest.mark.parametrize("name", PAPER_MODELS)
def test_forward_backward_at_recipe_input_size(name: str) -> None:
    size = get_model_spec(name).input_size
    model = create_model(name).train()
    out = model(torch.rand(2, 3, size, size))
    out.float().sum().backward()
    assert out.shape == (2, OUT_DIM[get_model_spec(name).output])


def test_throughput_helper_runs_on_cpu() -> None:
    from genimage_fast.models.throughput import measure_fwd_bwd

    m = measure_fwd_bwd("demo_cnn", batch=2, device="cpu", precision="fp32", iters=1, warmup=0, image_size=32)
    assert m.images == 2 and m.seconds > 0 and m.extra["image_size"] == 32
    with pytest.raises(ValueError, match="precision"):
        measure_fwd_bwd("demo_cnn", device="cpu", precision="int8")
