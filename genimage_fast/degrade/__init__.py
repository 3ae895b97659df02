"""Image degradations on uint8 batches (DESIGN §4.4): the paper's Task 2 and CNNSpot's augmentation.

    from genimage_fast import degrade
    degrade.jpeg(x, 30); degrade.gaussian_blur(x, 3.0); degrade.low_resolution(x, 64)
    degrade.apply(x, "jpeg:30"); degrade.cnnspot(x, generator=g); degrade.Degrade("blur:3")(x)
"""

from genimage_fast.degrade.module import Degrade
from genimage_fast.degrade.ops import BLUR_IMPLS, JPEG_IMPLS, cnnspot, gaussian_blur, jpeg, low_resolution
from genimage_fast.degrade.spec import DEGRADATIONS, Degradation, apply, parse_spec
from genimage_fast.degrade.validate import BACKENDS

__all__ = [
    "BACKENDS",
    "BLUR_IMPLS",
    "DEGRADATIONS",
    "JPEG_IMPLS",
    "Degradation",
    "Degrade",
    "apply",
    "cnnspot",
    "gaussian_blur",
    "jpeg",
    "low_resolution",
    "parse_spec",
]
