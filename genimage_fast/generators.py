"""The eight GenImage generators: ids in the paper's column order, folder names, native sizes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genimage_fast.errors import GenImageError
from genimage_fast.registry import close_matches


@dataclass(frozen=True)
class Generator:
    id: int
    name: str  # our short name, used as JSON keys everywhere
    folder: str  # the official release's subset folder
    parents: tuple[str, ...]  # parent folder names seen in the release
    size: int  # native fake size (square)
    title: str  # the paper's column header
    token: str  # the generator token inside fake file names


GENERATORS: tuple[Generator, ...] = (
    Generator(0, "midjourney", "imagenet_midjourney", ("Midjourney",), 1024, "Midjourney", "midjourney"),
    Generator(1, "sdv14", "imagenet_ai_0419_sdv4", ("stable_diffusion_v_1_4",), 512, "SD V1.4", "sdv4"),
    Generator(2, "sdv15", "imagenet_ai_0424_sdv5", ("stable_diffusion_v_1_5",), 512, "SD V1.5", "sdv5"),
    Generator(3, "adm", "imagenet_ai_0508_adm", ("ADM",), 256, "ADM", "adm"),
    Generator(4, "glide", "imagenet_glide", ("glide", "GLIDE"), 256, "GLIDE", "glide"),
    Generator(5, "wukong", "imagenet_ai_0424_wukong", ("wukong", "Wukong"), 512, "Wukong", "wukong"),
    Generator(6, "vqdm", "imagenet_ai_0419_vqdm", ("VQDM",), 256, "VQDM", "vqdm"),
    Generator(7, "biggan", "imagenet_ai_0419_biggan", ("BigGAN",), 128, "BigGAN", "biggan"),
)
UNKNOWN_GENERATOR = -1
GENERATOR_NAMES: tuple[str, ...] = tuple(g.name for g in GENERATORS)
BY_NAME = {g.name: g for g in GENERATORS}
BY_FOLDER = {g.folder: g for g in GENERATORS}


EXTRA_GENERATOR_BASE = 100  # ids of generators from other benchmarks start here (named by a record set's table)


def generator_name(gid: int, extra: Mapping[int, str] | None = None) -> str:
    """The short name for an id; an other benchmark's generator from `extra` (a record set's
    `generator_names`); 'unknown' for -1 or an id nobody named."""
    if 0 <= gid < len(GENERATORS):
        return GENERATORS[gid].name
    return extra.get(gid, "unknown") if extra else "unknown"


def generator_names(generators: str | Sequence[int | str] | None) -> list[str]:
    """Names in the paper's order, whatever the user wrote (ids such as "1" included), so every later
    lookup by name (results, Table 5) finds them; [] for None / all."""
    return [generator_name(g) for g in parse_generators(generators) or []]


_ALIASES = {alias.lower(): g.id for g in GENERATORS for alias in (g.name, g.folder, g.title, g.token, *g.parents)}


def genimage_generator(folder_name: str) -> int | None:
    """The GenImage generator a folder of another benchmark is named after (AIGCDetectBenchmark's
    `ADM`, `Glide`, `stable_diffusion_v_1_4`, ...), matched case-insensitively; None when none is."""
    return _ALIASES.get(folder_name.lower())


def parse_generators(generators: str | Sequence[int | str] | None) -> list[int] | None:
    """Names, ids (-1 = unknown) or 'sdv14,adm' -> sorted unique ids ([1, 3]); None, '' or [] -> None
    (all). An unknown name or id is a GenImageError naming the choices."""
    if not generators:
        return None
    if isinstance(generators, str):
        generators = [part.strip() for part in generators.split(",") if part.strip()]
    ids = set()
    for item in generators:
        text = str(item).strip()
        if text.lstrip("-").isdigit():
            gid = int(text)
            if not UNKNOWN_GENERATOR <= gid < len(GENERATORS):
                raise GenImageError(f"unknown generator id {gid}; ids are -1..{len(GENERATORS) - 1}")
            ids.add(gid)
        elif text in BY_NAME:
            ids.add(BY_NAME[text].id)
        else:
            raise GenImageError(
                f"unknown generator {text!r}{close_matches(text, list(GENERATOR_NAMES))}; "
                f"choose from: {', '.join(GENERATOR_NAMES)}"
            )
    return sorted(ids)
