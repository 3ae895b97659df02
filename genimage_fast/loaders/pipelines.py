"""Full-image transforms: what each original detector's code does to a fully decoded image.

The box transforms of `transforms.py` (rrc, resize_crop, the default eval crop) reduce to one crop
box plus one antialiased resize, so a decoder can crop while it decodes. The originals' pipelines
are not of that shape (timm's bicubic resize, CNNDetection's no-resize centre crop with padding,
AutoGAN's cv2 squash + fixed crop, F3Net's PIL squash, CNNSpot's blur + JPEG before the crop,
GramNet's resolution augmentation): they take the full decoded image.

Contract (shared by the loaders' plumbing, the eval transforms and the train transforms):

- An entry of EVAL_TRANSFORMS / TRAIN_TRANSFORMS is a factory (usually a frozen dataclass) called
  as `factory(image_size=S, **options)`; the object it returns is picklable (DataLoader workers)
  and callable as `transform(image, rng) -> np.ndarray`:
    image: [H, W, 3] uint8 RGB, the full-size decode of the stored sample (PIL's `.convert("RGB")`);
    rng:   None for eval transforms (deterministic); for train transforms a numpy Generator from
           `sample_rng(seed, epoch, index)`, so a sample's draws depend only on (seed, epoch,
           split index), never on workers, batch composition or rank;
    returns [S, S, 3] uint8 RGB, C-contiguous (train transforms do their own flip, if any).
- Unknown names are a GenImageError with the close matches (the Registry's rule).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from genimage_fast.errors import GenImageError
from genimage_fast.registry import Registry


class ImageTransform(Protocol):
    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray: ...


TransformFactory = Callable[..., ImageTransform]
EVAL_TRANSFORMS: Registry[TransformFactory] = Registry("eval transform")
TRAIN_TRANSFORMS: Registry[TransformFactory] = Registry("train transform")

_SAMPLE_STREAM = 0x7478  # keeps per-sample draws apart from the epoch order and crop-plan streams


def build_transform(registry: Registry[TransformFactory], name: str, image_size: int,
                    options: dict[str, Any] | None = None) -> ImageTransform:
    """registry[name](image_size=..., **options); an unknown option is one GenImageError line naming the
    factory's options (what the loaders and the tests both build through)."""
    import dataclasses

    factory = registry.get(name)
    options = dict(options or {})
    if dataclasses.is_dataclass(factory):
        known = [f.name for f in dataclasses.fields(factory) if f.init and f.name != "image_size"]
        unknown = [k for k in options if k not in known]
        if unknown:
            raise GenImageError(f"{registry.kind} {name!r}: unknown option {unknown[0]!r}; "
                                f"options: {', '.join(known) or 'none'}")
    try:
        return factory(image_size=image_size, **options)
    except TypeError as err:  # a function factory's signature
        raise GenImageError(f"{registry.kind} {name!r}: bad transform_options {options}: {err}") from None


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The per-sample generator of a train transform: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([int(seed), int(epoch), int(index), _SAMPLE_STREAM])


def load_transforms() -> None:
    """Import the modules that fill the registries (train_transforms.py may not exist yet)."""
    import importlib
    import importlib.util

    from genimage_fast.loaders import eval_transforms  # noqa: F401  (fills EVAL_TRANSFORMS)

    if importlib.util.find_spec("genimage_fast.loaders.train_transforms") is not None:
        importlib.import_module("genimage_fast.loaders.train_transforms")
    from genimage_fast.loaders import npr_transforms  # noqa: F401  (NPR's train and eval transforms)


def parse_degrade(spec: str | None) -> tuple[str, Any] | None:
    """A degradation spec ('none', 'lr:S', 'jpeg:Q', 'blur:SIGMA') -> (name, value); None / 'none' -> None.
    The grammar is genimage_fast.degrade's (one parser); a bad spec is one GenImageError line."""
    if spec is None:
        return None
    from genimage_fast.degrade.spec import parse_spec

    try:
        name, value = parse_spec(spec)
    except ValueError as err:
        raise GenImageError(str(err)) from None
    return None if name == "none" else (name, value)


def degrade_image(image: np.ndarray, name: str, value: Any) -> np.ndarray:
    """Degrade a full decoded HWC uint8 RGB image as the paper's Task 2 does (DESIGN §4.2), with the
    libraries themselves: `lr:S` PIL BILINEAR squash to S x S (antialiased); `jpeg:Q` PIL JPEG save at
    quality Q with 4:2:0 chroma + decode; `blur:SIGMA` scipy.ndimage.gaussian_filter on each uint8
    plane (truncating to uint8 after each pass, as gaussian_filter(img, (s, s, 0)) on uint8 does)."""
    from PIL import Image

    if name == "lr":
        return np.asarray(Image.fromarray(image).resize((int(value), int(value)), Image.BILINEAR))
    if name == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=int(value), subsampling="4:2:0")
        buf.seek(0)
        with Image.open(buf) as decoded:
            return np.asarray(decoded.convert("RGB"))
    if name == "blur":
        from scipy.ndimage import gaussian_filter

        if float(value) == 0.0:
            return image
        planes = np.ascontiguousarray(image.transpose(2, 0, 1))  # contiguous planes: ~2x faster than HWC
        for plane in planes:
            gaussian_filter(plane, sigma=float(value), output=plane)
        return np.ascontiguousarray(planes.transpose(1, 2, 0))
    raise GenImageError(f"unknown degradation {name!r}")


@dataclass(frozen=True)
class SamplePipeline:
    """What a loader does to one fully decoded sample: degrade (eval only), then the transform.

    Picklable (DataLoader workers); deterministic: a train transform draws from
    sample_rng(seed, epoch, index), an eval transform gets rng=None.
    """

    transform: ImageTransform
    image_size: int
    degrade: tuple[str, Any] | None = None
    train: bool = False
    seed: int = 0
    centre: np.ndarray | None = None  # per split index: centre-crop side first (0: none; loaders/frames.py)
    name: str = ""  # the transform's registry name (device_eval.py looks up its device twin by it)

    def __call__(self, image: np.ndarray, index: int, epoch: int) -> np.ndarray:
        if self.centre is not None and self.centre[index] > 0:
            from genimage_fast.loaders.eval_transforms import centre_crop

            image = centre_crop(image, int(self.centre[index]))
        if self.degrade is not None:
            image = degrade_image(image, *self.degrade)
        rng = sample_rng(self.seed, epoch, index) if self.train else None
        out = self.transform(image, rng)
        size = self.image_size
        if out.dtype != np.uint8 or out.shape != (size, size, 3):
            raise GenImageError(f"transform {type(self.transform).__name__} returned {out.dtype} {out.shape}, "
                                f"expected uint8 ({size}, {size}, 3)")
        return out
