"""Each detector's own eval transform, as its original code writes it (EVAL_TRANSFORMS, DESIGN §5).

Every entry is a factory `factory(image_size=S, **options)` returning a picklable callable
`transform(image, rng) -> [S, S, 3] uint8 RGB` on the full-size decoded image (pipelines.py has the
contract). Sources (GenImage-Dataset/GenImage, `detector_codes/`, the code GenImage ran):

- resize_centre: our default (torchvision Resize(S / 0.875) bilinear antialiased + CenterCrop(S)), the
  loaders' box path (transforms.eval_boxes + decode.resize_array), so it equals the fast path exactly.
- timm_resnet50: pytorch-image-models-0.6.12/timm/data/transforms_factory.py:147-151
  (`scale_size = floor(img_size / crop_pct)`, `Resize(scale_size, interpolation)`, `CenterCrop`) with
  timm/models/resnet.py:66-68 (`'resnet50': interpolation='bicubic', crop_pct=0.95`).
- timm_vit: deit-main/datasets.py:101-105 (`int(input_size / eval_crop_ratio)`, 0.875,
  `Resize(size, interpolation=3)` = bicubic, CenterCrop) and Swin-Transformer-main/data/build.py:148-153
  (`int(256 / 224 * IMG_SIZE)`, bicubic per config.py:30); both give 256 -> 224 at 224.
- cnndetection: CNNDetection-master/eval.py:21 (`no_resize = True`), data/datasets.py:29
  (`CenterCrop(cropSize)`, 224 by options/base_options.py:30); torchvision's CenterCrop pads an image
  smaller than the crop with zeros (evenly, the odd pixel right/bottom) before cropping.
- autogan: AutoGAN-master/code/cycleGAN_dataset.py:119-121 (`cv2.resize(image, (256, 256))`, bilinear
  without antialiasing) and GAN_Detection_Train.py:200 (`[16:240, 16:240]`). The original reads with
  cv2 (BGR planes) and resizes only images whose height is not 256; we squash every image that is not
  already 256x256 and return RGB (the resize is per channel, so the pixels are the same).
- f3net: yyk-wew/F3Net utils.py:39-40 `FFDataset.resize_image`: `image.resize((size, size))`, size 299, PIL's
  default filter (bicubic since Pillow 7); GenImage's f3net.py ships no data code.
- gramnet: Global_Texture_Enhancement.../stylegan-ffhq/test4.py:54-57 (`cv2.resize(im, (512, 512))`,
  bilinear, no antialiasing) after `cv2.imread`; the squash target is image_size.

Sizes follow image_size: timm/DeiT crop_pct formulas, AutoGAN's 256/224 load size, F3Net's and
GramNet's squash target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.pipelines import EVAL_TRANSFORMS

PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
               "nearest": Image.NEAREST}  # by name, for the originals' interpolation options (eval and train)


def _check(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise GenImageError(f"an eval transform takes HWC uint8 RGB images, got {image.dtype} {image.shape}")
    return image


def _filter(name: str) -> int:
    if name not in PIL_FILTERS:
        raise GenImageError(f"unknown interpolation {name!r}; expected one of {', '.join(PIL_FILTERS)}")
    return PIL_FILTERS[name]


def _cv2():
    from genimage_fast.loaders.decode import opencv

    cv2 = opencv()
    if cv2 is None:
        raise GenImageError("this eval transform needs OpenCV (pip install opencv-python-headless)")
    return cv2


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """size x size centre crop, zero padding where the image is smaller (torchvision's CenterCrop rule)."""
    h, w = image.shape[:2]
    if size > w or size > h:
        pad_x, pad_y = max(size - w, 0), max(size - h, 0)
        image = np.pad(image, ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2), (0, 0)))
        h, w = image.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return np.ascontiguousarray(image[top:top + size, left:left + size])


def short_side_size(width: int, height: int, short: int) -> tuple[int, int]:
    """(w, h) after torchvision's Resize(short) on a PIL image: the long side truncated."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


@EVAL_TRANSFORMS.register("resize_centre")
@dataclass(frozen=True)
class ResizeCentre:
    """Resize short side to resize_size (0: image_size / 0.875), bilinear antialiased, centre crop."""

    image_size: int
    resize_size: int = 0

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        from genimage_fast.loaders.decode import resize_array
        from genimage_fast.loaders.transforms import TransformSpec, eval_boxes

        h, w = _check(image).shape[:2]
        spec = TransformSpec("eval", self.image_size, resize_size=self.resize_size)
        box = np.clip(eval_boxes(spec, np.array([w]), np.array([h]), None)[0], 0.0, 1.0)
        return resize_array(image, box, self.image_size, False)


@dataclass(frozen=True)
class TimmEval:
    """timm's transforms_imagenet_eval: Resize(floor(S / crop_pct), interpolation) + CenterCrop(S)."""

    image_size: int
    crop_pct: float = 0.875
    interpolation: str = "bicubic"

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        h, w = _check(image).shape[:2]
        scale = int(math.floor(self.image_size / self.crop_pct))
        size = short_side_size(w, h, scale)
        pil = Image.fromarray(image)
        if size != (w, h):
            pil = pil.resize(size, _filter(self.interpolation))
        return centre_crop(np.asarray(pil), self.image_size)


@EVAL_TRANSFORMS.register("timm_resnet50")
def timm_resnet50(image_size: int, crop_pct: float = 0.95, interpolation: str = "bicubic") -> TimmEval:
    """timm 0.6.12's resnet50 default cfg: bicubic, crop_pct 0.95 (235 -> 224)."""
    return TimmEval(image_size, crop_pct, interpolation)


@EVAL_TRANSFORMS.register("timm_vit")
def timm_vit(image_size: int, crop_pct: float = 0.875, interpolation: str = "bicubic") -> TimmEval:
    """DeiT-S / Swin-T eval: bicubic, crop ratio 0.875 (256 -> 224)."""
    return TimmEval(image_size, crop_pct, interpolation)


@EVAL_TRANSFORMS.register("cnndetection")
@dataclass(frozen=True)
class CnnDetectionEval:
    """CNNDetection's test pipeline: no resize, CenterCrop(image_size) with zero padding."""

    image_size: int

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        return centre_crop(_check(image), self.image_size)


@EVAL_TRANSFORMS.register("autogan")
@dataclass(frozen=True)
class AutoGanEval:
    """AutoGAN: cv2 squash to load_size x load_size (0: image_size * 256 / 224), centre [16:240] crop."""

    image_size: int
    load_size: int = 0

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        load = self.load_size or int(round(self.image_size * 256 / 224))
        if load < self.image_size:
            raise GenImageError(f"autogan: load_size {load} is smaller than image_size {self.image_size}")
        if _check(image).shape[:2] != (load, load):
            image = _cv2().resize(image, (load, load))  # INTER_LINEAR, as the original's default
        off = (load - self.image_size) // 2
        return np.ascontiguousarray(image[off:off + self.image_size, off:off + self.image_size])


@EVAL_TRANSFORMS.register("f3net")
@dataclass(frozen=True)
class F3NetEval:
    """F3Net: PIL squash to image_size x image_size (299), Pillow's default filter for resize (bicubic)."""

    image_size: int
    interpolation: str = "bicubic"

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        size = (self.image_size, self.image_size)
        return np.asarray(Image.fromarray(_check(image)).resize(size, _filter(self.interpolation)))


@EVAL_TRANSFORMS.register("gramnet")
@dataclass(frozen=True)
class GramNetEval:
    """GramNet's test code: cv2 squash to image_size x image_size (512 in the original), bilinear."""

    image_size: int

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        size = (self.image_size, self.image_size)
        return np.ascontiguousarray(_cv2().resize(_check(image), size))
