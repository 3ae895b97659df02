"""The detectors (DESIGN §5) in a registry: resnet50, deit_s, swin_t, cnnspot, spec, f3net, gramnet,
plus demo_cnn for the CPU demo. Every model takes float images in [0, 1], [N, 3, H, W]."""

from genimage_fast.models import demo_cnn, f3net, gramnet, npr, spec, timm_models, univfd  # noqa: F401  (register)
from genimage_fast.models.factory import (
    MODELS,
    ModelSpec,
    create_model,
    fake_probability,
    get_model_spec,
    list_models,
    load_pretrained,
)

__all__ = [
    "MODELS",
    "ModelSpec",
    "create_model",
    "fake_probability",
    "get_model_spec",
    "list_models",
    "load_pretrained",
]
