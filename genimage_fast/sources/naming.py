"""GenImage file names: which files are images, class ids from names, and the official name patterns.

Fakes start with the ImageNet class index, padded or not (`033_sdv4_00134.png`, `208_midjourney_76.png`,
`0_wukong_image128.png`, `115_adm_142.PNG`); GLIDE puts it in a middle field, the one just before the
generator token (`GLIDE_1000_200_08_808_glide_00033.png`). Reals are ImageNet names: train
`n01440764_5969.JPEG` (class from the WordNet id) and val `ILSVRC2012_val_00000008.JPEG` (no class: -1).
"""

from __future__ import annotations

import os

from genimage_fast.generators import GENERATORS
from genimage_fast.sources.synsets import imagenet_synsets, wnid_class_id

UNKNOWN_CLASS = -1
NUM_CLASSES = 1000
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})  # compared lower-cased: .PNG and .JPEG count
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})
_ALL_TOKENS = frozenset(g.token for g in GENERATORS)

# The release's name pattern per generator (our short name -> format with cls and idx), used to write
# the demo tree; the parser below does not depend on them, it reads every variant.
FAKE_NAME_FORMATS: dict[str, str] = {
    "midjourney": "{cls}_midjourney_{idx}.png",
    "sdv14": "{cls:03d}_sdv4_{idx:05d}.png",
    "sdv15": "{cls:03d}_sdv5_{idx:05d}.png",
    "adm": "{cls}_adm_{idx}.PNG",
    "glide": "GLIDE_1000_200_08_{cls}_glide_{idx:05d}.png",
    "wukong": "{cls}_wukong_image{idx}.png",
    "vqdm": "{cls:03d}_vqdm_{idx:05d}.png",
    "biggan": "{cls:03d}_biggan_{idx:05d}.png",
}


def fake_file_name(generator: str, class_id: int, index: int) -> str:
    """The official-style file name of a fake: fake_file_name("sdv14", 33, 134) == "033_sdv4_00134.png"."""
    return FAKE_NAME_FORMATS[generator].format(cls=class_id, idx=index)


def real_train_name(class_id: int, number: int) -> str:
    """An ImageNet train name: real_train_name(0, 5969) == "n01440764_5969.JPEG"."""
    return f"{imagenet_synsets()[class_id]}_{number}.JPEG"


def real_val_name(number: int) -> str:
    """An ImageNet val name: real_val_name(8) == "ILSVRC2012_val_00000008.JPEG"."""
    return f"ILSVRC2012_val_{number:08d}.JPEG"


def skip_reason(name: str) -> str | None:
    """Why a file in a label folder is not a sample (hidden, system or not an image), else None."""
    if name.startswith("."):
        return "hidden file"
    if name.lower() in SYSTEM_FILES:
        return "system file"
    ext = os.path.splitext(name)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        return f"not an image ({ext or 'no extension'})"
    return None


def _class_index(field: str) -> int:
    if field.isascii() and field.isdigit():
        value = int(field)
        if value < NUM_CLASSES:
            return value
    return UNKNOWN_CLASS


def fake_class_id(name: str, generator: int = -1) -> int:
    """Class of a fake from its name: the field before the generator token, else the leading field.

    With an unknown generator (-1) any generator's token is accepted. Unparseable -> -1.
    """
    stem = os.path.splitext(name)[0]
    fields = stem.split("_")
    tokens = {GENERATORS[generator].token} if 0 <= generator < len(GENERATORS) else _ALL_TOKENS
    for i in range(1, len(fields)):
        if fields[i].lower() in tokens:
            found = _class_index(fields[i - 1])
            if found != UNKNOWN_CLASS:
                return found
    return _class_index(fields[0])


def real_class_id(name: str) -> int:
    """Class of a real from its ImageNet name: `nXXXXXXXX_*` via the synset list, anything else -1."""
    wnid, sep, _ = name.partition("_")
    if sep and len(wnid) == 9 and wnid[0] == "n" and wnid[1:].isdigit():
        return wnid_class_id(wnid)
    return UNKNOWN_CLASS


def class_id_from_name(name: str, label: int, generator: int = -1) -> int:
    """Class id of a sample from its file name (label 1 fake, 0 real); -1 when the name has none."""
    return fake_class_id(name, generator) if label == 1 else real_class_id(name)
