"""bench/photo_tree.py: fakes rewritten as photo-like PNGs of the same sizes, compressing like GenImage's."""

from __future__ import annotations

from PIL import Image

from genimage_fast.bench.photo_tree import make_photo_tree


def test_photo_tree_keeps_layout_and_sizes_and_is_photo_like(demo_tree, tmp_path):
    out = tmp_path / "photo"
    ratio = make_photo_tree(demo_tree, out)["fakes_png_over_raw"]
    assert ratio > 0.4  # GenImage's fakes: ~0.51 of raw; the demo's synthetic ones ~0.20
    before = sorted(p.relative_to(demo_tree) for p in demo_tree.rglob("*") if p.is_file())
    assert before == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for rel in before:
        if "/ai/" in rel.as_posix():
            with Image.open(demo_tree / rel) as a, Image.open(out / rel) as b:
                assert a.size == b.size and b.mode == "RGB"
        else:
            assert (demo_tree / rel).read_bytes() == (out / rel).read_bytes()  # reals untouched
