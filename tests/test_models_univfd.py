"""UnivFD against its reference architecture: OpenAI CLIP's image tower as UniversalFakeDetect ships it.

The reference below transcribes WisconsinAIVision/UniversalFakeDetect models/clip/model.py
(= openai/CLIP clip/model.py): `VisionTransformer` (conv1 without bias, class_embedding,
positional_embedding, ln_pre, `Transformer` of `ResidualAttentionBlock`s with nn.MultiheadAttention and
a QuickGELU MLP, ln_post on the class token, `@ self.proj`) and models/clip_models.py (`self.fc =
nn.Linear(CHANNELS["ViT-L/14"] = 768, num_classes)`), in plain torch. Weights are random: the
reference's state dict, saved with torch.save as OpenAI's `visual.*` keys, is what UnivFD loads.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.models import create_model, get_model_spec
from genimage_fast.models.common import count_parameters

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d_model, d_model * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = nn.LayerNorm(d_model)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class RefVisionTransformer(nn.Module):
    def __init__(self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int, output_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer.resblocks(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


SMALL = {"embed_dim": 64, "depth": 2, "num_heads": 4, "patch_size": 14, "feature_dim": 32}


def small_reference(seed: int = 0) -> RefVisionTransformer:
    torch.manual_seed(seed)
    ref = RefVisionTransformer(224, 14, SMALL["embed_dim"], SMALL["depth"], SMALL["num_heads"], SMALL["feature_dim"])
    for p in ref.parameters():  # random everywhere (LayerNorm / biases too), so a mis-mapping shows
        nn.init.normal_(p, 0.0, 0.05)
    return ref.eval()


def save_openai_layout(ref: nn.Module, path, extra: dict | None = None) -> None:
    state = {f"visual.{k}": v for k, v in ref.state_dict().items()}
    state["logit_scale"] = torch.tensor(4.6)  # the text side of a real CLIP file is ignored
    torch.save({**state, **(extra or {})}, path)


def test_vit_l14_parameter_count_and_shapes_match_the_reference():
    with torch.device("meta"):
        ours = create_model("univfd")
        ref = RefVisionTransformer(224, 14, 1024, 24, 16, 768)
        probe = nn.Linear(768, 1)
        out = ours(torch.zeros(2, 3, 224, 224))
        feats = ours.features(torch.zeros(2, 3, 224, 224))
    # timm's head is the projection plus a zero bias (768 numbers) that OpenAI's `x @ proj` lacks.
    assert count_parameters(ours, trainable_only=False) == count_parameters(ref) + count_parameters(probe) + 768
    assert count_parameters(ours) == 768 + 1  # only the probe trains (--fix_backbone)
    assert tuple(out.shape) == (2, 1) and tuple(feats.shape) == (2, 768)
    spec = get_model_spec("univfd")
    assert (spec.input_size, spec.output, spec.default_loss) == (224, "logit", "bce")


def test_features_equal_clip_encode_image_of_the_loaded_file(tmp_path):
    ref = small_reference()
    save_openai_layout(ref, tmp_path / "clip.pt")
    model = create_model("univfd", clip_weights=str(tmp_path / "clip.pt"), **SMALL).eval()
    x = torch.rand(3, 3, 224, 224)
    with torch.no_grad():
        expected = ref((x - CLIP_MEAN) / CLIP_STD)
        got = model.features(x)
        logit = model(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logit, got @ model.fc.weight.T + model.fc.bias)
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_checkpoint_holds_only_the_probe_and_reloads(tmp_path):
    ref = small_reference()
    save_openai_layout(ref, tmp_path / "clip.pt")
    a = create_model("univfd", clip_weights=str(tmp_path / "clip.pt"), **SMALL)
    assert sorted(a.state_dict()) == ["fc.bias", "fc.weight"]
    b = create_model("univfd", clip_weights=str(tmp_path / "clip.pt"), clip_sha256=a.backbone_sha256, **SMALL)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
    with pytest.raises(GenImageError, match="sha256"):
        create_model("univfd", clip_weights=str(tmp_path / "clip.pt"), clip_sha256="0" * 64, **SMALL)


def test_bad_clip_files_are_one_line(tmp_path):
    ref = small_reference()
    state = {f"visual.{k}": v for k, v in ref.state_dict().items()}
    del state["visual.ln_post.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(GenImageError, match="missing tensor for norm.weight"):
        create_model("univfd", clip_weights=str(tmp_path / "missing.pt"), **SMALL)
    wide = RefVisionTransformer(224, 14, 96, 2, 4, 32)
    save_openai_layout(wide, tmp_path / "wide.pt")
    with pytest.raises(GenImageError, match="has shape"):
        create_model("univfd", clip_weights=str(tmp_path / "wide.pt"), **SMALL)
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "notclip.pt")
    with pytest.raises(GenImageError, match="no 'visual"):
        create_model("univfd", clip_weights=str(tmp_path / "notclip.pt"), **SMALL)


def test_openai_torchscript_archive_loads(tmp_path):
    """OpenAI's ViT-L-14.pt is a TorchScript archive (clip.load reads its state_dict()): so is this one."""

    class Clip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = small_reference()

        def forward(self, x):
            return self.visual(x)

    clip = Clip().eval()
    torch.jit.trace(clip, torch.rand(1, 3, 224, 224)).save(str(tmp_path / "ViT-tiny.pt"))
    model = create_model("univfd", clip_weights=str(tmp_path / "ViT-tiny.pt"), **SMALL).eval()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), clip.visual((x - CLIP_MEAN) / CLIP_STD), rtol=1e-4, atol=1e-5)
