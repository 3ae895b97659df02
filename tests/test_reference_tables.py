"""Reference tables beyond the GenImage paper (paper_numbers.REFERENCE_TABLES): transcription and rendering."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genimage_fast.generators import GENERATOR_NAMES
from genimage_fast.reports.paper_numbers import GROMMELT, NPR, REFERENCE_TABLES
from genimage_fast.reports.report import report

# chuangchuangtan/NPR-DeepfakeDetection README.md, "Detection Results / GenImage" (commit e2dbbe6,
# lines 229-238 at 73cde1c), as printed: their subset names, their row order.
NPR_README = """
|Generator   | Acc. | A.P. |
|:----------:|:----:|:----:|
| ADM        | 87.8 | 96.0 |
| biggan     | 80.7 | 89.8 |
| glide      | 93.2 | 99.1 |
| midjourney | 91.7 | 97.9 |
| sdv5       | 94.4 | 99.9 |
| vqdm       | 88.7 | 96.1 |
| wukong     | 94.0 | 99.7 |
| Mean       | 90.1 | 96.9 |
"""
README_NAMES = {"ADM": "adm", "biggan": "biggan", "glide": "glide", "midjourney": "midjourney", "sdv5": "sdv15",
                "vqdm": "vqdm", "wukong": "wukong", "Mean": "avg"}


def _readme_rows() -> dict[str, tuple[float, float]]:
    rows = {}
    for line in NPR_README.strip().splitlines()[2:]:
        name, acc, ap = (cell.strip() for cell in line.strip("|").split("|"))
        rows[README_NAMES[name]] = (float(acc), float(ap))
    return rows


def test_npr_table_is_the_readmes() -> None:
    assert REFERENCE_TABLES["npr"] is NPR and REFERENCE_TABLES["grommelt"] is GROMMELT
    # trained on SD V1.4, so tested on the other seven, in the paper's column order
    assert NPR.columns == tuple(g for g in GENERATOR_NAMES if g != "sdv14")
    printed = _readme_rows()
    assert set(printed) == {*NPR.columns, "avg"}
    for column, (acc, ap) in printed.items():
        assert NPR.rows["npr (accuracy)"][column] == acc, column
        assert NPR.rows["npr (AP)"][column] == ap, column
    # a few cells by hand, and the Mean is over the seven subsets (to the README's rounding)
    assert NPR.rows["npr (accuracy)"]["biggan"] == 80.7 and NPR.rows["npr (AP)"]["sdv15"] == 99.9
    assert NPR.rows["npr (accuracy)"]["avg"] == 90.1 and NPR.rows["npr (AP)"]["avg"] == 96.9
    for row in NPR.rows.values():
        assert abs(np.mean([row[c] for c in NPR.columns]) - row["avg"]) < 0.05
    assert "SD V1.4" in NPR.caption and "7 other subsets" in NPR.caption and "no GenImage table" in NPR.reference


def _one_run(tmp: Path) -> Path:
    """The smallest results.json `report` reads: one ResNet-50 trained on SD V1.4."""
    acc = {"none": {g: 0.5 for g in GENERATOR_NAMES} | {"mean": 0.5}}
    path = tmp / "run" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"checkpoint": "c.pt", "data": "records", "accuracy": acc, "real_accuracy": acc,
                                "fake_accuracy": acc, "recipe": "resnet50", "model": "resnet50",
                                "train_generators": ["sdv14"]}))
    return path


def test_report_renders_every_reference_table(tmp_path: Path) -> None:
    data = report([_one_run(tmp_path)], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Reference numbers beyond the paper" in md
    # Grommelt's means alone; NPR's seven subsets titled as the paper's columns, its Mean last
    assert "| Setting | Avg Acc.(%) |\n|:---|---:|\n| resnet50 (GenImage as released) | 71.3 |\n" in md
    assert ("| Setting | Midjourney | SD V1.5 | ADM | GLIDE | Wukong | VQDM | BigGAN | Mean (%) |\n"
            "|:---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            "| npr (accuracy) | 91.7 | 94.4 | 87.8 | 93.2 | 94.0 | 88.7 | 80.7 | 90.1 |\n"
            "| npr (AP) | 97.9 | 99.9 | 96.0 | 99.1 | 99.7 | 96.1 | 89.8 | 96.9 |\n") in md
    assert "chuangchuangtan/NPR-DeepfakeDetection README" in md and "trained on SD V1.4 only" in md
    saved = json.loads((tmp_path / "report" / "report.json").read_text())["reference"]
    assert saved == data["reference"] and set(saved) == {"grommelt", "npr"}
    assert saved["npr"]["columns"] == list(NPR.columns)
    assert saved["npr"]["rows"]["npr (AP)"]["sdv15"] == pytest.approx(0.999)
    assert saved["grommelt"]["rows"]["resnet50 (grommelt protocol)"]["avg"] == pytest.approx(0.834)
