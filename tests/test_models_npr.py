"""NPR against its reference code's architecture (chuangchuangtan/NPR-DeepfakeDetection).

The reference below is transcribed from networks/resnet.py (ResNet.__init__: 3x3 stride-2 conv1,
layer1/layer2 of Bottlenecks, fc1 = Linear(512, num_classes); forward: `NPR = x -
self.interpolate(x, 0.5)`, `self.conv1(NPR*2.0/3.0)`) and networks/trainer.py:15-17 (`resnet50()`,
then an unused `self.model.fc = nn.Linear(2048, 1)`), written here with plain torch.nn.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genimage_fast.models import create_model, fake_probability, get_model_spec
from genimage_fast.models.common import count_parameters


class RefBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class RefNPR(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), num_classes=1):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(512, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [RefBottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [RefBottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def interpolate(self, img, factor):
        return F.interpolate(F.interpolate(img, scale_factor=factor, mode="nearest", recompute_scale_factor=True),
                             scale_factor=1 / factor, mode="nearest", recompute_scale_factor=True)

    def forward(self, x):
        npr = x - self.interpolate(x, 0.5)
        x = self.maxpool(self.relu(self.bn1(self.conv1(npr * 2.0 / 3.0))))
        x = self.layer2(self.layer1(x))
        return self.fc1(self.avgpool(x).view(x.size(0), -1))


def reference_trainer_model() -> RefNPR:
    model = RefNPR()  # resnet50(): Bottleneck, [3, 4, 6, 3], num_classes=1
    model.fc = nn.Linear(2048, 1)  # trainer.py:16, never used by forward
    return model


def test_parameter_count_and_shapes_match_the_reference():
    ours = create_model("npr")
    ref = reference_trainer_model()
    assert count_parameters(ours) == count_parameters(ref) - (2048 + 1)  # the unused fc is left out
    ref_shapes = {k: v.shape for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref_shapes
    spec = get_model_spec("npr")
    assert (spec.input_size, spec.output, spec.default_loss) == (224, "logit", "bce")


def test_forward_equals_the_reference_on_normalised_input():
    torch.manual_seed(0)
    ours = create_model("npr").eval()
    ref = reference_trainer_model().eval()
    ref.load_state_dict({**ours.state_dict(), "fc.weight": ref.fc.weight, "fc.bias": ref.fc.bias})
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # data/datasets.py Normalize
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        out, expected = ours(x), ref((x - mean) / std)
    assert out.shape == (2, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert fake_probability(out, "logit").shape == (2,)


def test_npr_input_ignores_a_nearest_upsampled_image():
    """NPR's premise: an image that is exactly a 2x nearest upsampling has a zero residual."""
    from genimage_fast.models.npr import npr_residual

    small = torch.rand(1, 3, 8, 8)
    assert torch.count_nonzero(npr_residual(small.repeat_interleave(2, 2).repeat_interleave(2, 3))) == 0
    assert torch.count_nonzero(npr_residual(torch.rand(1, 3, 16, 16))) > 0
