"""The detectors' input conventions against independent reimplementations of the originals' calls.

Our models take float RGB in [0, 1] and convert inside; these tests read the same pixels the way the
code GenImage ran read them (GenImage-Dataset/GenImage `detector_codes/`, cited as repo path:line):

  "AutoGAN" = AutoGAN-master/code/{cycleGAN_dataset.py, GAN_Detection_Train.py}
  "GramNet" = Global_Texture_Enhancement_for_Fake_Face_Detection_in_the-Wild-master/stylegan-ffhq/
              {main.py, resnet18_gram.py, test4.py}

and compare the outputs of our model with those of a reference network holding the same weights.
Each comparison is paired with a check that the other convention gives a different answer, so a test
can tell the conventions apart.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.models import create_model, get_model_spec


def _png_pair(tmp_path: Path, n: int, size: int, seed: int) -> tuple[list[Path], torch.Tensor]:
    """n random RGB PNGs written by PIL -> (their paths, our model input: RGB float [n, 3, H, W] in [0, 1])."""
    rng = np.random.default_rng(seed)
    paths, arrays = [], []
    for i in range(n):
        # smooth colour fields plus noise, R, G and B planes unlike each other
        yy, xx = np.mgrid[0:size, 0:size] / size
        base = np.stack([200 * xx, 120 * yy + 40, 60 + 150 * xx * yy], axis=-1)
        rgb = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rgb).save(path)
        paths.append(path)
        arrays.append(rgb)
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    return paths, x


def _randomize_bn_stats(model: nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm running statistics, so eval outputs depend on the input's scale and offset."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


# ------------------------------------------------------------------------------------------- Spec


def _autogan_fft_input(path: Path) -> np.ndarray:
    """AutoGAN's network input for one test image, as its code computes it.

    cycleGAN_dataset.py:119-121: `image = cv2.imread(filename)` (B, G, R planes), cv2.resize to 256
    unless the height is already 256; GAN_Detection_Train.py:200 `im = img[16:240, 16:240, :]` (test
    crop); :205-217 (`--feature fft`, `--mode 0`): float32 / 255, per plane i in 0..2
    `np.log(np.abs(np.fft.fft2(img)) + 1e-3)`, 5th/95th `np.percentile` to [0, 1], `(f - 0.5) * 2`,
    clipped to [-1, 1], written back into plane i; :242 `np.transpose(im, (2, 0, 1))`.
    """
    image = cv2.imread(str(path))
    if image.shape[0] != 256:
        image = cv2.resize(image, (256, 256))
    im = image[16:240, 16:240, :].astype(np.float32)
    im = im / 255.0
    for i in range(3):
        img = im[:, :, i]
        fft_img = np.fft.fft2(img)
        fft_img = np.log(np.abs(fft_img) + 1e-3)
        fft_min = np.percentile(fft_img, 5)
        fft_max = np.percentile(fft_img, 95)
        fft_img = (fft_img - fft_min) / (fft_max - fft_min)
        fft_img = (fft_img - 0.5) * 2
        fft_img[fft_img < -1] = -1
        fft_img[fft_img > 1] = 1
        im[:, :, i] = fft_img
    return np.transpose(im, (2, 0, 1))


def test_spec_feeds_autogans_bgr_spectrum_to_an_imagenet_initialised_resnet34(tmp_path: Path) -> None:
    torch.manual_seed(0)
    # GAN_Detection_Train.py:419-421: models.resnet34(pretrained=True); model.fc = nn.Linear(num_ftrs, 2).
    # The "ImageNet" file here is a torchvision resnet34 state dict with random weights (nothing is downloaded).
    init = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), init)
    ours = create_model("spec", pretrained=str(init)).eval()
    _randomize_bn_stats(ours, 1)
    reference = torchvision.models.resnet34()
    reference.fc = nn.Linear(reference.fc.in_features, 2)
    reference.load_state_dict({k.removeprefix("net."): v for k, v in ours.state_dict().items()})
    reference.eval()

    paths, x = _png_pair(tmp_path, 2, 256, seed=3)  # AutoGAN's datasets are 256 x 256
    x = x[:, :, 16:240, 16:240]  # the same [16:240] crop of the same RGB pixels
    ref_in = torch.from_numpy(np.stack([_autogan_fft_input(p) for p in paths]))
    with torch.no_grad():
        expected = reference(ref_in)
        got = ours(x)
        as_rgb = create_model("spec", channel_order="rgb").eval()
        as_rgb.load_state_dict(ours.state_dict())
        rgb_out = as_rgb(x)
        # our spectrum itself, plane by plane, is AutoGAN's in cv2's order (float32 FFT: clipped bins aside)
        np.testing.assert_allclose(ours.spectrum(x).flip(1).numpy(), ref_in.numpy(), atol=2e-3)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)
    assert (rgb_out - expected).abs().max() > 50 * (got - expected).abs().max()  # channel order is visible


def test_spec_channel_order_option() -> None:
    assert create_model("spec").channel_order == "bgr"  # the original's order is the default
    with pytest.raises(GenImageError, match="channel_order"):
        create_model("spec", channel_order="grb")


# ----------------------------------------------------------------------------------------- GramNet


def _gramnet_input(path: Path, size: int) -> torch.Tensor:
    """GramNet's network input: main.py:40-47 / test4.py:54-62: `im = cv2.imread(path)` (B, G, R),
    cv2.resize to the input size, `ims[c, :, :] = im[:, :, c]` for c in 0..2 into a float array: raw
    0..255 values, no normalisation (main.py's `preprocess` at :23-32 is never applied, :76-78)."""
    im = cv2.imread(str(path))
    im = cv2.resize(im, (size, size))
    ims = np.zeros((3, size, size))
    ims[0, :, :] = im[:, :, 0]
    ims[1, :, :] = im[:, :, 1]
    ims[2, :, :] = im[:, :, 2]
    return torch.tensor(ims.astype("float32"))


class OriginalGramResNet(nn.Module):
    """resnet18_gram.py's ResNet(BasicBlock, [2, 2, 2, 2]) under its own module names (:160-237) with
    its forward (:280-367). The body is torchvision's ResNet-18 (the same BasicBlock network)."""

    def __init__(self) -> None:
        super().__init__()
        tv = torchvision.models.resnet18()
        self.conv1, self.bn1, self.relu, self.maxpool = tv.conv1, tv.bn1, tv.relu, tv.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = tv.layer1, tv.layer2, tv.layer3, tv.layer4
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.scale = nn.Parameter(torch.FloatTensor([1]))  # ScaleLayer (:87-94), one shared instance
        self.fcnewr = nn.Sequential(nn.Linear(704, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 2),
                                    nn.LogSoftmax(dim=1))
        for name, c in [("conv_interi_0", 3), ("conv_inter0_0", 64), ("conv_inter1_0", 64), ("conv_inter2_0", 64),
                        ("conv_inter3_0", 128), ("conv_inter4_0", 256)]:
            setattr(self, name, nn.Sequential(nn.Conv2d(c, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
                                              nn.ReLU(inplace=True)))
        for name in ("gi_fc1", "g0_fc1", "g_fc1r", "g2_fc1", "g3_fc1", "g4_fc1"):
            setattr(self, name, nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()))
        for name in ("gi_fc2", "g0_fc2", "g_fc2r", "g2_fc2", "g3_fc2", "g4_fc2"):
            setattr(self, name, nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()))

    @staticmethod
    def gram(input: torch.Tensor) -> torch.Tensor:  # GramMatrix (:70-86)
        a, b, c, d = input.size()
        features = input.view(a, b, c * d)
        G = torch.bmm(features, features.transpose(1, 2))
        return G.unsqueeze(1).div(b * c * d)

    def _branch(self, x: torch.Tensor, inter: str, fc1: str, fc2: str) -> torch.Tensor:
        g = getattr(self, fc2)(getattr(self, fc1)(self.gram(getattr(self, inter)(x))))
        return self.avgpool(g).view(g.size(0), -1) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x3 = x
        x4 = self.relu(self.bn1(self.conv1(x3)))
        x5 = self.maxpool(x4)
        x6 = self.layer1(x5)
        x7 = self.layer2(x6)
        x8 = self.layer3(x7)
        x = self.avgpool(self.layer4(x8)).view(x8.size(0), -1)
        gi = self._branch(x3, "conv_interi_0", "gi_fc1", "gi_fc2")
        g0 = self._branch(x4, "conv_inter0_0", "g0_fc1", "g0_fc2")
        g1 = self._branch(x5, "conv_inter1_0", "g_fc1r", "g_fc2r")
        g2 = self._branch(x6, "conv_inter2_0", "g2_fc1", "g2_fc2")
        g3 = self._branch(x7, "conv_inter3_0", "g3_fc1", "g3_fc2")
        g4 = self._branch(x8, "conv_inter4_0", "g4_fc1", "g4_fc2")
        return self.fcnewr(torch.cat((x, gi, g0, g1, g2, g3, g4), 1))


# our tap -> the original's (branch conv, first and second Gram conv) names
BRANCH_NAMES = {"input": ("conv_interi_0", "gi_fc1", "gi_fc2"), "conv1": ("conv_inter0_0", "g0_fc1", "g0_fc2"),
                "maxpool": ("conv_inter1_0", "g_fc1r", "g_fc2r"), "layer1": ("conv_inter2_0", "g2_fc1", "g2_fc2"),
                "layer2": ("conv_inter3_0", "g3_fc1", "g3_fc2"), "layer3": ("conv_inter4_0", "g4_fc1", "g4_fc2")}


def _original_key(key: str) -> str:
    if key.startswith("body."):
        return key.removeprefix("body.")
    if key.startswith("head."):
        return "fcnewr." + key.removeprefix("head.")
    if key.startswith("branches."):
        _, tap, part, rest = key.split(".", 3)
        return f"{BRANCH_NAMES[tap][('reduce', 'fc1', 'fc2').index(part)]}.{rest}"
    return key  # scale


def test_gramnet_feeds_raw_bgr_pixels_like_the_original(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ours = create_model("gramnet").eval()
    _randomize_bn_stats(ours, 2)
    with torch.no_grad():
        ours.scale.fill_(0.7)
    reference = OriginalGramResNet()
    reference.load_state_dict({_original_key(k): v for k, v in ours.state_dict().items()})  # strict: all names map
    reference.eval()

    size = 64  # the original's is 512 (main.py:42); the forward does not depend on it, the CPU time does
    paths, x = _png_pair(tmp_path, 2, size, seed=5)
    ref_in = torch.stack([_gramnet_input(p, size) for p in paths])
    with torch.no_grad():
        expected = reference(ref_in)
        got = ours(x)
        rgb_planes = reference(ref_in.flip(1))  # the same pixels as RGB planes
        as_imagenet = create_model("gramnet", pixels="imagenet").eval()
        as_imagenet.load_state_dict(ours.state_dict())
        imagenet_out = as_imagenet(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    err = (got - expected).abs().max()
    assert (rgb_planes - expected).abs().max() > 50 * err  # the plane order is visible
    assert (imagenet_out - expected).abs().max() > 50 * err  # so is the value range / normalisation


def test_gramnet_pixels_option_and_the_originals_size() -> None:
    assert create_model("gramnet").pixels == "bgr255"
    with pytest.raises(GenImageError, match="pixels"):
        create_model("gramnet", pixels="rgb01")
    # main.py:42 cv2.resize(im, (512, 512)) and test4.py:57 cv2.resize(im, (512, 512)): GenImage's copy
    # trains and tests at 512 (supplement B gives no size); the recipe's image_size follows the spec.
    from genimage_fast.config import load_config

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "gramnet.yaml"
    assert get_model_spec("gramnet").input_size == 512 == load_config(recipe).data.image_size
