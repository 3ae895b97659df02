"""UnivFD (Ojha et al., CVPR 2023): a linear probe on frozen CLIP ViT-L/14 image features.

As WisconsinAIVision/UniversalFakeDetect builds it (models/clip_models.py: `clip.load("ViT-L/14")`,
`self.fc = nn.Linear(768, 1)`, `forward: self.fc(self.model.encode_image(x))`; networks/trainer.py:
`fc` initialised N(0, 0.02), every other parameter frozen (`--fix_backbone`), AdamW lr 1e-4, BCE;
data/datasets.py: CLIP's mean/std). The image tower is timm's VisionTransformer in CLIP's
configuration (pre-norm, QuickGELU, class token, `ln_post` then the projection as `head`); CLIP's
weights come from a local file (`clip_weights`: OpenAI's `ViT-L-14.pt` state dict or an open_clip
checkpoint with `visual.*` keys), mapped strictly by timm's own OpenAI-CLIP converter.

Checkpoints: when the backbone comes from `clip_weights`, a run's checkpoint holds only the probe
(`fc.*`, 769 numbers instead of 1.2 GB); the backbone is rebuilt from the file, whose sha256 is
checked against `clip_sha256` when given. Without a file (tests, random weights) everything is saved.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.models.common import Normalize
from genimage_fast.models.factory import ModelSpec, register_model
from genimage_fast.records.hashing import sha256_file

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # UniversalFakeDetect data/datasets.py MEAN["clip"]
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VIT_L14 = {"embed_dim": 1024, "depth": 24, "num_heads": 16, "patch_size": 14, "feature_dim": 768}
PROBE_INIT_STD = 0.02  # networks/trainer.py: torch.nn.init.normal_(self.model.fc.weight.data, 0.0, opt.init_gain)


def clip_image_tower(embed_dim: int, depth: int, num_heads: int, patch_size: int, feature_dim: int,
                     image_size: int = 224) -> nn.Module:
    """CLIP's visual transformer as timm builds it (vit_large_patch14_clip_quickgelu_224's arguments)."""
    from timm.layers import LayerNorm
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=image_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                             num_heads=num_heads, pre_norm=True, norm_layer=partial(LayerNorm, eps=1e-5),
                             act_layer="quick_gelu", num_classes=feature_dim, global_pool="token")


def _load_clip_file(path: Path) -> object:
    """A state dict from a CLIP file: a plain checkpoint (weights_only), or the TorchScript archive that
    OpenAI's `clip.load` downloads (ViT-L-14.pt), read as clip.load does for its state dict."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign / damaged files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "TorchScript" not in str(exc):
            raise GenImageError(f"CLIP weights {path}: cannot be read ({first})") from None
    try:  # a local file the user named; clip.load does the same (torch.jit.load(...).state_dict())
        return torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception as exc:
        raise GenImageError(f"CLIP weights {path}: a TorchScript archive that cannot be loaded "
                            f"({str(exc).splitlines()[0]})") from None


def read_clip_visual(path: Path, tower: nn.Module) -> dict[str, torch.Tensor]:
    """A CLIP checkpoint's image tower in timm's names; every tensor accounted for, or one line naming it."""
    from timm.models.vision_transformer import _convert_openai_clip

    obj = _load_clip_file(path)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not any(str(k).startswith("visual.") for k in obj):
        raise GenImageError(f"CLIP weights {path}: no 'visual.*' tensors (an OpenAI CLIP or open_clip state dict)")
    mapped = _convert_openai_clip({k.removeprefix("module."): v for k, v in obj.items()}, tower)
    own = tower.state_dict()
    for key in sorted(own):
        if key not in mapped:
            raise GenImageError(f"CLIP weights {path}: missing tensor for {key}")
        if mapped[key].shape != own[key].shape:
            raise GenImageError(f"CLIP weights {path}: {key} has shape {tuple(mapped[key].shape)}, "
                                f"the model needs {tuple(own[key].shape)}")
    extra = sorted(set(mapped) - set(own))
    if extra:
        raise GenImageError(f"CLIP weights {path}: unexpected image-tower tensor {extra[0]}")
    return mapped


class UnivFD(nn.Module):
    """[N,3,224,224] floats in [0, 1] -> one logit [N, 1]; `features(x)` gives the frozen 768-d CLIP features."""

    head_prefixes = ("fc",)
    frozen_features = True  # `genimage-fast features` may cache self.features(x): it never trains

    def __init__(self, clip_weights: str = "", clip_sha256: str = "", embed_dim: int = VIT_L14["embed_dim"],
                 depth: int = VIT_L14["depth"], num_heads: int = VIT_L14["num_heads"],
                 patch_size: int = VIT_L14["patch_size"], feature_dim: int = VIT_L14["feature_dim"]) -> None:
        super().__init__()
        self.normalize = Normalize(CLIP_MEAN, CLIP_STD)
        self.backbone = clip_image_tower(embed_dim, depth, num_heads, patch_size, feature_dim)
        self.fc = nn.Linear(feature_dim, 1)
        nn.init.normal_(self.fc.weight, 0.0, PROBE_INIT_STD)
        self.backbone_file = ""
        if clip_weights:
            path = Path(clip_weights)
            if not path.is_file():
                raise GenImageError(f"CLIP weights not found: {path}")
            digest = sha256_file(path)
            if clip_sha256 and digest != clip_sha256:
                raise GenImageError(f"CLIP weights {path}: sha256 {digest[:12]}... is not the run's "
                                    f"{clip_sha256[:12]}... (a different file)")
            self.backbone.load_state_dict(read_clip_visual(path, self.backbone))
            self.backbone_file, self.backbone_sha256 = str(path), digest
            self.register_state_dict_post_hook(_drop_backbone)
            self.register_load_state_dict_post_hook(_backbone_is_not_missing)
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> UnivFD:
        super().train(mode)
        self.backbone.eval()  # frozen: always in inference mode
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """CLIP's encode_image: ln_post(class token) @ proj, [N, 768]."""
        with torch.no_grad():
            return self.backbone(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).to(self.fc.weight.dtype))


def _drop_backbone(module: nn.Module, state: dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state if k.startswith(prefix + "backbone.")]:
        del state[key]


def _backbone_is_not_missing(module: nn.Module, incompatible) -> None:
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith("backbone.")]


@register_model(ModelSpec("univfd", 224, "logit", "bce",
                          "UnivFD (Ojha et al., CVPR 2023): linear probe on frozen CLIP ViT-L/14 features"))
def univfd(**overrides) -> nn.Module:
    return UnivFD(**overrides)
