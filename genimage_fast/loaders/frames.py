"""A record set's load-time centre crop (Grommelt et al.'s protocol), as a frame per sample.

`convert --protocol grommelt` records `protocol.center_crop` {generator name: min_size} in the
manifest: every image is centre-cropped to min_size x min_size before the usual transform
(UnbiasedGenImage Swin-T/.../data/get_transform.py: `T.CenterCrop(args.cropsize)`). The box path
draws its crop boxes inside that frame (fractions of the frame, mapped back to the stored image);
the full-image path crops the decoded image first. torchvision's CenterCrop offsets:
top = int(round((h - c) / 2)), left = int(round((w - c) / 2)).
"""

from __future__ import annotations

import numpy as np

from genimage_fast.generators import generator_name


def centre_crop_sizes(manifest: dict, generators: np.ndarray, names: dict[int, str] | None = None) -> np.ndarray | None:
    """Per-sample crop side (0: none) from the manifest's protocol, or None without one."""
    crops = ((manifest.get("protocol") or {}).get("center_crop")) or {}
    if not crops:
        return None
    lookup = {gid: int(crops.get(generator_name(int(gid), names), 0)) for gid in np.unique(generators)}
    return np.array([lookup[int(g)] for g in generators], dtype=np.int64)


def frames(sizes: np.ndarray, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames float64 [N, 4] as fractions of the stored image, frame width, frame height) in pixels."""
    w = np.maximum(width, 1).astype(np.float64)
    h = np.maximum(height, 1).astype(np.float64)
    c = np.where(sizes > 0, np.minimum(sizes, np.minimum(w, h)), 0).astype(np.float64)
    cw, ch = np.where(c > 0, c, w), np.where(c > 0, c, h)
    left = np.where(c > 0, np.round((w - cw) / 2.0), 0.0)
    top = np.where(c > 0, np.round((h - ch) / 2.0), 0.0)
    out = np.stack([left / w, top / h, (left + cw) / w, (top + ch) / h], axis=1)
    return out, cw.astype(np.int64), ch.astype(np.int64)


def in_frames(boxes: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Boxes given as fractions of their frames -> fractions of the stored images."""
    fw, fh = frame[:, 2] - frame[:, 0], frame[:, 3] - frame[:, 1]
    return np.stack([frame[:, 0] + boxes[:, 0] * fw, frame[:, 1] + boxes[:, 1] * fh,
                     frame[:, 0] + boxes[:, 2] * fw, frame[:, 1] + boxes[:, 3] * fh], axis=1)
