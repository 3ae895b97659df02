"""Other benchmarks' layouts, scanned from hand-built trees (folder layouts as each benchmark ships):
ForenSynths / CNNDetection (PeterWang512/CNNDetection README: `train/<class>/{0_real,1_fake}`,
`test/<gan>[/<class>]/{0_real,1_fake}`), UniversalFakeDetect (dataset_paths.py:
`diffusion_datasets/<gen>/{0_real,1_fake}`), AIGCDetectBenchmark (`test/<gen>/{0_real,1_fake}`, with
GenImage's subsets as `ADM`, `Glide`, `stable_diffusion_v_1_4`, ...), Chameleon (`test/{0_real,1_fake}`),
Synthbuster (one folder per generator + RAISE reals).
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from genimage_fast.cli import main
from genimage_fast.records import convert, open_records
from genimage_fast.sources import scan_tree


def put(root: Path, rel: str, size=(16, 12)) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)


def by_path(result) -> dict[str, tuple[str, int, str]]:
    return {s.relpath: (s.split, s.label, s.generator) for s in result.samples}


def named(result, gid: int) -> str:
    from genimage_fast.generators import generator_name

    return generator_name(gid, result.generator_names)


def test_forensynths_layout(tmp_path):
    root = tmp_path / "CNN_synth"
    put(root, "train/airplane/0_real/a.png")
    put(root, "train/airplane/1_fake/b.png")
    put(root, "val/cat/1_fake/c.png")
    put(root, "test/stylegan/car/0_real/d.png")
    put(root, "test/stylegan/car/1_fake/e.png")
    put(root, "test/deepfake/1_fake/f.png")
    put(root, "test/biggan/0_real/g.png")
    (root / "test/deepfake/1_fake/notes.txt").write_text("not an image")
    result = scan_tree(root)
    got = {p: (split, label, named(result, g)) for p, (split, label, g) in by_path(result).items()}
    assert got == {
        "train/airplane/0_real/a.png": ("train", 0, "progan"), "train/airplane/1_fake/b.png": ("train", 1, "progan"),
        "val/cat/1_fake/c.png": ("val", 1, "progan"),
        "test/stylegan/car/0_real/d.png": ("test", 0, "stylegan"),
        "test/stylegan/car/1_fake/e.png": ("test", 1, "stylegan"),
        "test/deepfake/1_fake/f.png": ("test", 1, "deepfake"),
        "test/biggan/0_real/g.png": ("test", 0, "biggan")}
    assert result.samples[0].class_id == -1
    assert [s.path for s in result.skipped] == ["test/deepfake/1_fake/notes.txt"]
    gens = {s.relpath: s.generator for s in result.samples}
    assert gens["test/biggan/0_real/g.png"] == 7  # GenImage's BigGAN id: same generator, same column
    assert gens["test/stylegan/car/1_fake/e.png"] >= 100


def test_universalfakedetect_and_aigcdetect_layouts(tmp_path):
    ufd = tmp_path / "diffusion_datasets"
    put(ufd, "guided/0_real/a.png")
    put(ufd, "guided/1_fake/b.png")
    put(ufd, "ldm_200_cfg/1_fake/c.png")
    result = scan_tree(ufd)
    assert {p: (s, lab, named(result, g)) for p, (s, lab, g) in by_path(result).items()} == {
        "guided/0_real/a.png": ("test", 0, "guided"), "guided/1_fake/b.png": ("test", 1, "guided"),
        "ldm_200_cfg/1_fake/c.png": ("test", 1, "ldm_200_cfg")}
    aigc = tmp_path / "AIGCDetect_testset"
    for gen in ("ADM", "Glide", "stable_diffusion_v_1_4", "progan", "DALLE2"):
        put(aigc, f"test/{gen}/1_fake/x.png")
        put(aigc, f"test/{gen}/0_real/y.png")
    result = scan_tree(aigc)
    names = {named(result, g) for _, _, g in by_path(result).values()}
    assert names == {"adm", "glide", "sdv14", "progan", "dalle2"}  # GenImage's subsets keep their names


def test_chameleon_layout(tmp_path):
    root = tmp_path / "Chameleon"
    put(root, "test/0_real/a.jpg")
    put(root, "test/1_fake/b.png")
    result = scan_tree(root)
    assert {p: (s, lab, named(result, g)) for p, (s, lab, g) in by_path(result).items()} == {
        "test/0_real/a.jpg": ("test", 0, "chameleon"), "test/1_fake/b.png": ("test", 1, "chameleon")}


def test_synthbuster_layout(tmp_path):
    root = tmp_path / "synthbuster"
    put(root, "dalle3/r0.png")
    put(root, "midjourney-v5/r1.png")
    put(root, "stable-diffusion-xl/r2.png")
    put(root, "RAISE/r3.png")
    result = scan_tree(root)
    assert {p: (s, lab, named(result, g)) for p, (s, lab, g) in by_path(result).items()} == {
        "dalle3/r0.png": ("test", 1, "dalle3"), "midjourney-v5/r1.png": ("test", 1, "midjourney-v5"),
        "stable-diffusion-xl/r2.png": ("test", 1, "stable-diffusion-xl"), "RAISE/r3.png": ("test", 0, "raise")}


def test_convert_keeps_the_names_and_the_test_split(tmp_path, capsys):
    root = tmp_path / "ufd"
    put(root, "guided/0_real/a.png")
    put(root, "guided/1_fake/b.png")
    put(root, "dalle/1_fake/c.png")
    convert(root, tmp_path / "rec", fmt="dali", progress=False)
    rs = open_records(tmp_path / "rec")
    assert rs.splits == ["test"] and len(rs.split("test")) == 3
    assert set(rs.generator_names.values()) == {"guided", "dalle"}
    assert rs.manifest["counts"] == {"dalle": {"real": 0, "fake": 1}, "guided": {"real": 1, "fake": 1}}
    assert main(["scan", str(root), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"dalle", "guided", "_skipped"}


def test_universalfakedetect_scanned_from_above_its_folder(tmp_path):
    """UniversalFakeDetect's dataset_paths.py: `diffusion_datasets/<gen>/{0_real,1_fake}` under a data root."""
    root = tmp_path / "ufd_root"
    for gen in ("guided", "laion", "ldm_200"):
        put(root, f"diffusion_datasets/{gen}/0_real/a.png")
        put(root, f"diffusion_datasets/{gen}/1_fake/b.png")
    result = scan_tree(root)
    assert {named(result, g) for _, _, g in by_path(result).values()} == {"guided", "laion", "ldm_200"}
    one = tmp_path / "one"
    put(one, "guided/0_real/a.png")
    put(one, "guided/1_fake/b.png")
    assert {named(scan_tree(one), g) for _, _, g in by_path(scan_tree(one)).values()} == {"guided"}
