"""The GenImage scanner: every official name pattern, every accepted layout, stray files, errors.

Trees are hand-built from empty files: the scanner must read everything from names, never open images.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genimage_fast.cli import main
from genimage_fast.errors import GenImageError
from genimage_fast.generators import BY_NAME, GENERATORS
from genimage_fast.sources import ScanResult, scan_tree
from genimage_fast.sources.naming import (
    FAKE_NAME_FORMATS,
    class_id_from_name,
    fake_class_id,
    fake_file_name,
    real_class_id,
    skip_reason,
)
from genimage_fast.sources.synsets import imagenet_synsets

ADM = BY_NAME["adm"].id
GLIDE = BY_NAME["glide"].id


def _touch(root: Path, relpaths: list[str]) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _rows(result: ScanResult) -> list[tuple[str, str, int, int, int]]:
    return [(s.relpath, s.split, s.label, s.generator, s.class_id) for s in result.samples]


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "generator", "expected"),
    [
        ("033_sdv4_00134.png", "sdv14", 33),  # zero-padded class
        ("116_biggan_00094.png", "biggan", 116),
        ("208_midjourney_76.png", "midjourney", 208),  # unpadded index
        ("0_wukong_image128.png", "wukong", 0),  # Wukong's imageN index
        ("115_adm_142.PNG", "adm", 115),  # ADM's upper-case extension
        ("GLIDE_1000_200_08_808_glide_00033.png", "glide", 808),  # class in the field before "glide"
        ("GLIDE_1000_200_08_7_glide_00001.png", "glide", 7),
        ("999_vqdm_00001.png", "vqdm", 999),
        ("024_sdv5_00001.png", "sdv15", 24),
    ],
)
def test_fake_class_from_every_official_pattern(name: str, generator: str, expected: int) -> None:
    assert fake_class_id(name, BY_NAME[generator].id) == expected
    assert fake_class_id(name) == expected  # merged layout: generator unknown, any token is accepted


@pytest.mark.parametrize("name", ["1000_sdv4_00001.png", "cat_sdv4_1.png", "image.png", "GLIDE_x_glide_1.png", "_.png"])
def test_unparseable_fake_class_is_minus_one(name: str) -> None:
    assert fake_class_id(name, BY_NAME["sdv14"].id) == -1


def test_real_class_from_wordnet_id_matches_timm() -> None:
    from timm.data import ImageNetInfo  # the independent reference: timm's own ImageNet-1k label order

    reference = ImageNetInfo().label_names()
    assert list(imagenet_synsets()) == list(reference)
    for index in (0, 1, 417, 999):
        assert real_class_id(f"{reference[index]}_5969.JPEG") == index
    assert real_class_id("n01440764_5969.JPEG") == 0
    assert real_class_id("n99999999_1.JPEG") == -1  # a WordNet id outside ImageNet-1k
    assert real_class_id("ILSVRC2012_val_00000008.JPEG") == -1  # val reals carry no class
    assert class_id_from_name("n01443537_10.JPEG", label=0) == 1
    assert class_id_from_name("033_sdv4_00134.png", label=1, generator=1) == 33


@pytest.mark.parametrize("generator", [g.name for g in GENERATORS])
def test_official_name_patterns_round_trip(generator: str) -> None:
    gid = BY_NAME[generator].id
    for cls, idx in ((0, 0), (7, 12), (999, 123456)):
        assert fake_class_id(fake_file_name(generator, cls, idx), gid) == cls
    assert set(FAKE_NAME_FORMATS) == set(BY_NAME)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (".DS_Store", "hidden file"),
        ("._033_sdv4_00134.png", "hidden file"),  # macOS resource fork beside an image
        ("Thumbs.db", "system file"),
        ("notes.txt", "not an image (.txt)"),
        ("README", "not an image (no extension)"),
        ("a.webp", "not an image (.webp)"),
        ("x.JPEG", None),
        ("x.jpg", None),
        ("x.PNG", None),
        ("x.jpeg", None),
    ],
)
def test_skip_reason(name: str, reason: str | None) -> None:
    assert skip_reason(name) == reason


# --- layouts --------------------------------------------------------------------------------------

RELEASE = [
    "ADM/imagenet_ai_0508_adm/train/ai/115_adm_142.PNG",
    "ADM/imagenet_ai_0508_adm/train/ai/7_adm_3.PNG",
    "ADM/imagenet_ai_0508_adm/train/nature/n01440764_5969.JPEG",
    "ADM/imagenet_ai_0508_adm/val/ai/999_adm_1.PNG",
    "ADM/imagenet_ai_0508_adm/val/nature/ILSVRC2012_val_00000008.JPEG",
    "glide/imagenet_glide/train/ai/GLIDE_1000_200_08_808_glide_00033.png",
    "glide/imagenet_glide/train/nature/n01443537_22.JPEG",
    "glide/imagenet_glide/val/ai/GLIDE_1000_200_08_1_glide_00002.png",
]
STRAYS = [
    "ADM/imagenet_ai_0508_adm/train/ai/.DS_Store",
    "ADM/imagenet_ai_0508_adm/train/nature/Thumbs.db",
    "glide/imagenet_glide/val/ai/list.txt",
    "README.md",
]


def test_release_root_with_generator_parent_folders(tmp_path: Path) -> None:
    _touch(tmp_path, RELEASE + STRAYS)
    result = scan_tree(tmp_path)
    assert _rows(result) == [
        ("ADM/imagenet_ai_0508_adm/train/ai/115_adm_142.PNG", "train", 1, ADM, 115),
        ("ADM/imagenet_ai_0508_adm/train/ai/7_adm_3.PNG", "train", 1, ADM, 7),
        ("ADM/imagenet_ai_0508_adm/train/nature/n01440764_5969.JPEG", "train", 0, ADM, 0),
        ("ADM/imagenet_ai_0508_adm/val/ai/999_adm_1.PNG", "val", 1, ADM, 999),
        ("ADM/imagenet_ai_0508_adm/val/nature/ILSVRC2012_val_00000008.JPEG", "val", 0, ADM, -1),
        ("glide/imagenet_glide/train/ai/GLIDE_1000_200_08_808_glide_00033.png", "train", 1, GLIDE, 808),
        ("glide/imagenet_glide/train/nature/n01443537_22.JPEG", "train", 0, GLIDE, 1),
        ("glide/imagenet_glide/val/ai/GLIDE_1000_200_08_1_glide_00002.png", "val", 1, GLIDE, 1),
    ]
    assert {s.path for s in result.samples} == {(tmp_path / rel).resolve() for rel in RELEASE}
    assert all(s.path.is_absolute() for s in result.samples)
    assert [s.path for s in result.skipped] == sorted(STRAYS)
    reasons = dict(result.skipped)
    assert reasons["ADM/imagenet_ai_0508_adm/train/ai/.DS_Store"] == "hidden file"
    assert reasons["ADM/imagenet_ai_0508_adm/train/nature/Thumbs.db"] == "system file"
    assert reasons["glide/imagenet_glide/val/ai/list.txt"] == "not an image (.txt)"
    assert "outside" in reasons["README.md"]
    assert result.counts() == {
        "adm": {"train": {"real": 1, "fake": 2}, "val": {"real": 1, "fake": 1}},
        "glide": {"train": {"real": 1, "fake": 1}, "val": {"real": 0, "fake": 1}},
    }


def test_subset_folders_without_parents_and_a_single_subset(tmp_path: Path) -> None:
    flat = [rel.split("/", 1)[1] for rel in RELEASE]  # drop the generator parent folders
    _touch(tmp_path, flat)
    result = scan_tree(tmp_path)
    assert [r[0] for r in _rows(result)] == sorted(flat)
    assert {s.generator for s in result.samples} == {ADM, GLIDE}

    single = scan_tree(tmp_path / "imagenet_ai_0508_adm")
    assert [s.relpath for s in single.samples] == [
        "train/ai/115_adm_142.PNG",
        "train/ai/7_adm_3.PNG",
        "train/nature/n01440764_5969.JPEG",
        "val/ai/999_adm_1.PNG",
        "val/nature/ILSVRC2012_val_00000008.JPEG",
    ]
    assert {s.generator for s in single.samples} == {ADM}


def test_renamed_subset_takes_its_generator_from_the_parent(tmp_path: Path) -> None:
    _touch(tmp_path, ["stable_diffusion_v_1_4/my_copy/train/ai/033_sdv4_00134.png"])
    (sample,) = scan_tree(tmp_path).samples
    assert (sample.generator, sample.class_id) == (BY_NAME["sdv14"].id, 33)


def test_merged_imagenet_ai_layout(tmp_path: Path) -> None:
    merged = [
        "imagenet_ai/train/ai/033_sdv4_00134.png",
        "imagenet_ai/train/ai/GLIDE_1000_200_08_808_glide_00033.png",
        "imagenet_ai/train/ai/0_wukong_image128.png",
        "imagenet_ai/train/nature/n01440764_5969.JPEG",
        "imagenet_ai/val/ai/115_adm_142.PNG",
        "imagenet_ai/val/nature/ILSVRC2012_val_00000008.JPEG",
    ]
    _touch(tmp_path, merged)
    for root, prefix in ((tmp_path, "imagenet_ai/"), (tmp_path / "imagenet_ai", "")):
        result = scan_tree(root)
        assert {s.generator for s in result.samples} == {-1}
        assert {s.relpath: s.class_id for s in result.samples} == {
            f"{prefix}train/ai/033_sdv4_00134.png": 33,
            f"{prefix}train/ai/0_wukong_image128.png": 0,
            f"{prefix}train/ai/GLIDE_1000_200_08_808_glide_00033.png": 808,
            f"{prefix}train/nature/n01440764_5969.JPEG": 0,
            f"{prefix}val/ai/115_adm_142.PNG": 115,
            f"{prefix}val/nature/ILSVRC2012_val_00000008.JPEG": -1,
        }
    assert {s.generator for s in scan_tree(tmp_path, generator=GLIDE).samples} == {GLIDE}
    assert list(scan_tree(tmp_path).counts()) == ["unknown"]


def test_generator_argument_selects_a_named_subset(tmp_path: Path) -> None:
    _touch(tmp_path, RELEASE)
    only = scan_tree(tmp_path, generator=GLIDE)
    assert len(only.samples) == 3 and {s.generator for s in only.samples} == {GLIDE}
    with pytest.raises(GenImageError, match="no biggan subset"):
        scan_tree(tmp_path, generator=BY_NAME["biggan"].id)
    with pytest.raises(GenImageError, match="generator id 8"):
        scan_tree(tmp_path, generator=8)


def test_nested_folders_and_odd_entries_in_a_subset(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        [
            "imagenet_ai_0419_vqdm/train/nature/n01440764/n01440764_1.JPEG",  # class sub-folder
            "imagenet_ai_0419_vqdm/train/nature/.cache/x.png",
            "imagenet_ai_0419_vqdm/train/labels.csv",
            "imagenet_ai_0419_vqdm/test/ai/1_vqdm_1.png",
            "imagenet_ai_0419_vqdm/.DS_Store",
        ],
    )
    result = scan_tree(tmp_path)
    assert _rows(result) == [
        ("imagenet_ai_0419_vqdm/train/nature/n01440764/n01440764_1.JPEG", "train", 0, BY_NAME["vqdm"].id, 0)
    ]
    assert dict(result.skipped) == {
        "imagenet_ai_0419_vqdm/.DS_Store": "hidden file",
        "imagenet_ai_0419_vqdm/test": "not a train/ or val/ folder",
        "imagenet_ai_0419_vqdm/train/labels.csv": "not an ai/ or nature/ folder",
        "imagenet_ai_0419_vqdm/train/nature/.cache/": "hidden folder",
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.write_bytes(b"x"), "is not a folder"),
        (lambda root: _touch(root, ["photos/cat.jpg", "notes.txt"]), "has no GenImage layout"),
        (lambda root: _touch(root, ["ai/1_adm_1.PNG", "nature/n01440764_1.JPEG"]), "looks like a split folder"),
    ],
)
def test_bad_roots_are_one_clear_error(tmp_path: Path, build, message: str) -> None:
    root = tmp_path / "src"
    build(root)
    with pytest.raises(GenImageError, match=message) as exc:
        scan_tree(root)
    assert "\n" not in str(exc.value)


# --- command ----------------------------------------------------------------------------------------


def test_scan_command_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _touch(tmp_path, RELEASE + STRAYS)
    assert main(["scan", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["adm"] == {"train": {"real": 1, "fake": 2}, "val": {"real": 1, "fake": 1}}
    assert doc["glide"]["val"] == {"real": 0, "fake": 1}
    assert sorted(item["path"] for item in doc["_skipped"]) == sorted(STRAYS)

    assert main(["scan", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "adm" in table and "glide" in table and "skipped: 4" in table
    assert "class unknown" not in table  # only the val real has -1, and val reals never carry a class
    total_line = next(line for line in table.splitlines() if line.startswith("total"))
    assert total_line.split()[1:] == ["3", "5", "8"]  # real, fake, total


def test_scan_table_counts_unreadable_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _touch(tmp_path, ["imagenet_ai_0419_vqdm/train/ai/cat_vqdm_1.png", "imagenet_ai_0419_vqdm/train/ai/5_vqdm_2.png"])
    assert main(["scan", str(tmp_path)]) == 0
    assert "class unknown (-1) from the file name: 1 images" in capsys.readouterr().out


def test_scan_cli_error_is_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "genimage_fast", "scan", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0]
