"""Report: the paper's numbers as data, the tables' layouts, the heatmap and the error paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genimage_fast.cli import main
from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES, GENERATORS
from genimage_fast.reports.paper_numbers import PAPER_TABLES, TABLE2, TABLE3, TABLE4, TABLE5, TASK2_SPECS
from genimage_fast.reports.report import report
from genimage_fast.reports.runs import load_run_results
from genimage_fast.reports.tables import cross_generator_matrix, degraded_table, method_averages

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "genimage-paper.txt"
TITLES = [g.title for g in GENERATORS]


# what the paper's own pipeline did for ResNet-50: no report footnote applies
FAITHFUL = {"degrade_at": "source", "eval_transform": "timm_resnet50", "decoder": "full", "backend": "dali",
            "selection": "train-holdout", "checkpoint": "best.pt", "store": "original", "max_side": None,
            "records_protocol": None}


def _results(accuracy: dict[str, dict[str, float]], train: list[str], recipe: str = "resnet50",
             protocol: dict | None = FAITHFUL) -> dict:
    out = {"checkpoint": "c.pt", "data": "records", "accuracy": accuracy, "real_accuracy": accuracy,
           "fake_accuracy": accuracy, "recipe": recipe, "model": recipe, "train_generators": train}
    if protocol is not None:
        out["protocol"] = protocol
    return out


def _row(values: dict[str, float]) -> dict[str, float]:
    row = dict(values)
    row["mean"] = float(np.mean(list(values.values())))
    return row


def _write(tmp: Path, name: str, results: dict) -> Path:
    path = tmp / name / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(results))
    return path


def _paper_table_rows(text: str, caption: str, n_rows: int) -> list[list[str]]:
    """The printed rows (tab-separated) that follow a table's caption in the paper text."""
    lines = text[text.index(caption):].splitlines()
    rows = [line.split("\t") for line in lines if re.match(r"^[A-Za-z].*\t\d", line)]
    return rows[:n_rows]


@pytest.mark.skipif(not PAPER.is_file(), reason="the paper text is not beside the clone")
@pytest.mark.parametrize("key,caption", [("table2", "Table 2:"), ("table3", "Table 3:"),
                                         ("table4", "Table 4:"), ("table5", "Table 5:")])
def test_paper_numbers_match_the_paper_text(key: str, caption: str) -> None:
    table = PAPER_TABLES[key]
    printed = _paper_table_rows(PAPER.read_text(), caption, len(table.rows))
    assert len(printed) == len(table.rows)
    for (row_name, row), line in zip(table.rows.items(), printed, strict=True):
        numbers = [float(v) for v in line[1:] if v.strip()]
        assert numbers == [row[c] for c in table.columns] + [row["avg"]], (key, row_name, line[0])


def test_paper_tables_are_consistent() -> None:
    # each printed Avg is the mean of its row, to the paper's rounding of the cells (up to 0.075 off)
    for table in PAPER_TABLES.values():
        for row in table.rows.values():
            assert abs(np.mean([row[c] for c in table.columns]) - row["avg"]) < 0.1
    assert TABLE3.rows["resnet50"] == TABLE2.rows["sdv14"]  # Table 3's ResNet-50 row is Table 2's SD V1.4 row
    assert TABLE5.columns == TASK2_SPECS and tuple(TABLE2.columns) == GENERATOR_NAMES


@pytest.fixture
def paper_runs(tmp_path: Path) -> list[Path]:
    """Eight ResNet-50 'runs' whose clean accuracies are the paper's Table 2 rows."""
    paths = []
    for train in GENERATOR_NAMES:
        clean = _row({g: TABLE2.rows[train][g] / 100 for g in GENERATOR_NAMES})
        degraded = {spec: _row({g: (TABLE5.rows["resnet50"][spec] / 100 if g == "sdv14" else 0.5)
                                for g in GENERATOR_NAMES}) for spec in TASK2_SPECS}
        paths.append(_write(tmp_path, train, _results({"none": clean, **degraded}, [train])))
    return paths


def test_report_reproduces_the_papers_tables(paper_runs: list[Path], tmp_path: Path) -> None:
    data = report(paper_runs, tmp_path / "report")
    matrix = data["table2"]["resnet50"]
    assert list(matrix) == list(GENERATOR_NAMES)  # rows: training subsets in paper order
    for train, row in matrix.items():
        for g in GENERATOR_NAMES:
            assert row[g] == pytest.approx(TABLE2.rows[train][g] / 100)
    # Table 4 is the column mean of Table 2: the paper's own numbers agree within rounding
    table4 = data["table4"]["rows"]["resnet50"]
    for g in GENERATOR_NAMES:
        assert 100 * table4[g] == pytest.approx(TABLE4.rows["resnet50"][g], abs=0.11)
    assert 100 * table4["avg"] == pytest.approx(TABLE4.rows["resnet50"]["avg"], abs=0.11)
    assert data["table4"]["training_subsets"] == {"resnet50": 8}
    # Table 5 reads the SD V1.4 run on its own subset
    table5 = data["table5"]["sdv14"]["resnet50"]
    for spec in TASK2_SPECS:
        assert 100 * table5[spec] == pytest.approx(TABLE5.rows["resnet50"][spec])
    assert 100 * table5["avg"] == pytest.approx(TABLE5.rows["resnet50"]["avg"], abs=0.1)

    md = (tmp_path / "report" / "report.md").read_text()
    assert json.loads((tmp_path / "report" / "report.json").read_text())["table2"]["resnet50"] == matrix
    header = "| Training Subset | " + " | ".join(TITLES) + " | Avg Acc.(%) |"
    assert header in md
    assert "| SD V1.4 | 54.9 | 99.9 | 99.7 | 53.5 | 61.9 | 98.2 | 56.6 | 52.0 | 72.1 |" in md
    assert "| Method | LR (112) | LR (64) | JPEG (q=65) | JPEG (q=30) | Blur (σ=3) | Blur (σ=5) | Avg Acc(%) |" in md
    # Table 5 vs paper: equal cells; the paper prints the mean 70.67 as 70.6
    assert "\n| ResNet-50 | +0.0 | +0.0 | +0.0 | +0.0 | +0.0 | +0.0 | +0.1 |\n" in md


def test_heatmap_png(paper_runs: list[Path], tmp_path: Path) -> None:
    data = report(paper_runs, tmp_path / "report")
    assert data["figures"] == ["figure3_resnet50.png"]
    with Image.open(tmp_path / "report" / "figure3_resnet50.png") as image:
        assert image.format == "PNG" and image.width > image.height > 300
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 20  # something was drawn


def test_missing_cells_are_dashes(tmp_path: Path) -> None:
    partial = _row({"sdv14": 0.99, "adm": 0.6})  # records held only two subsets
    paths = [_write(tmp_path, "a", _results({"none": partial}, ["sdv14"])),
             _write(tmp_path, "b", _results({"none": _row({"adm": 0.95, "sdv14": 0.5})}, ["adm"]))]
    runs = load_run_results(paths)
    matrix = cross_generator_matrix(runs, "resnet50")
    assert list(matrix) == ["sdv14", "adm"]
    assert matrix["sdv14"]["midjourney"] is None and matrix["sdv14"]["avg"] == pytest.approx(0.795)
    table4, used = method_averages(runs)
    assert table4["resnet50"]["sdv14"] == pytest.approx(0.745) and table4["resnet50"]["glide"] is None
    assert used == {"resnet50": 2}
    assert degraded_table(runs) == {}  # no degraded evaluation: no Table 5 row
    md = report(paths, tmp_path / "report")["markdown"]
    assert "| SD V1.4 | – | 99.0 | – | 60.0 | – | – | – | – | 79.5 |" in md
    assert "No degraded evaluations" in md


def test_runs_trained_on_all_generators(tmp_path: Path) -> None:
    acc = {"none": _row({g: 0.9 for g in GENERATOR_NAMES}), "jpeg:30": _row({g: 0.6 for g in GENERATOR_NAMES})}
    path = _write(tmp_path, "demo", _results(acc, [], recipe="demo"))
    data = report([path], tmp_path / "report")
    assert data["table2"] == {} and data["figures"] == []
    assert data["table5"]["all"]["demo"]["jpeg:30"] == pytest.approx(0.6)
    assert "| demo (trained on all generators) | 90.0 |" in data["markdown"]


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GenImageError, match="results not found"):
        report([tmp_path / "nope.json"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenImageError, match="no results.json"):
        report([tmp_path / "empty"], tmp_path / "out")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(GenImageError, match="not an eval results.json"):
        report([tmp_path / "bad.json"], tmp_path / "out")
    one = _write(tmp_path, "one", _results({"none": _row({"sdv14": 1.0})}, ["sdv14"]))
    two = _write(tmp_path, "two", _results({"none": _row({"sdv14": 1.0})}, ["sdv14"]))
    with pytest.raises(GenImageError, match="two results for resnet50"):
        report([one, two], tmp_path / "out")
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results not found" in err


def _note_numbers(md: str, text: str) -> str:
    """The number of the footnote whose legend line contains `text`."""
    (number,) = set(re.findall(r"^\[(\d+)\] [^\n]*" + re.escape(text), md, flags=re.M))  # one number per note
    return number


def test_report_footnotes_cells_the_paper_could_not_have_produced(tmp_path: Path) -> None:
    clean = _row({g: 0.8 for g in GENERATOR_NAMES})
    degraded = {spec: _row({g: 0.6 for g in GENERATOR_NAMES}) for spec in TASK2_SPECS}
    unfaithful = {**FAITHFUL, "degrade_at": "crop", "eval_transform": "resize_centre", "decoder": "dct-scaled",
                  "store": "jpeg:90", "max_side": 256, "selection": "val"}
    paths = [_write(tmp_path, "r50", _results({"none": clean, **degraded}, ["sdv14"], protocol=unfaithful)),
             _write(tmp_path, "old", _results({"none": clean, **degraded}, ["sdv14"], recipe="deit_s", protocol=None)),
             _write(tmp_path, "good", _results({"none": clean, **degraded}, ["sdv14"], recipe="swin_t",
                                               protocol={**FAITHFUL, "eval_transform": "timm_vit"}))]
    data = report(paths, tmp_path / "report")
    md = data["markdown"]
    crop = _note_numbers(md, "--degrade-at crop")
    transform = _note_numbers(md, "eval transform `resize_centre`, not the original pipeline's `timm_resnet50`")
    decoder = _note_numbers(md, "`dct-scaled` decoder")
    store = _note_numbers(md, "stored as `jpeg:90`")
    side = _note_numbers(md, "max side 256")
    val = _note_numbers(md, "chosen on val")
    old = _note_numbers(md, "no protocol recorded")
    clean_marks = ",".join(sorted([transform, decoder, store, side, val], key=int))
    # Table 3 (clean): every filled ResNet-50 cell carries the clean-image notes, not the crop note
    start = md.index("### Table 3")
    table3 = md[start:md.index("Published (", start)]
    assert f"| ResNet-50 | 80.0 [{clean_marks}] |" in table3 and f"[{crop}]" not in table3
    assert f"| DeiT-S | 80.0 [{old}] |" in table3
    assert "| Swin-T | 80.0 | 80.0 |" in table3  # faithful: no mark
    # Table 5 (degraded): the crop note joins, on every cell including Avg
    table5 = md[md.index("### Table 5"):]
    all_marks = ",".join(sorted([crop, transform, decoder, store, side, val], key=int))
    assert table5.split("\n")[4].count(f"60.0 [{all_marks}]") == 7  # 6 specs + Avg
    assert "| Swin-T | 60.0 | 60.0 |" in table5
    assert data["notes"][crop].startswith("degraded on the model-size crop")
    assert data["inputs"][0]["protocol"] == unfaithful
    assert "protocol: degradations on the model-size crop" in md and "protocol: not recorded" in md
    # each table names the protocol of its runs (degradation site only where cells are degraded)
    assert "\nProtocol: degrade at crop / not recorded / source; eval transform not recorded / resize_centre / " \
           "timm_vit;" in table5
    assert "\nProtocol: eval transform not recorded / resize_centre / timm_vit; decoder dct-scaled / full / " \
           "not recorded;" in table3


def test_npr_runs_and_gpu_decodes_get_their_own_notes() -> None:
    """NPR's two recipes are footnoted when scored through another eval transform; nvJPEG-decoded reals
    are named as such (not as the opt-in reduced-scale decode)."""
    from genimage_fast.reports.fidelity import run_notes

    base = {"degrade_at": "source", "decoder": "full", "store": "original", "selection": "last"}
    for recipe in ("npr", "npr_genimage"):
        assert run_notes(recipe, {**base, "eval_transform": recipe}) == []
        (note,) = run_notes(recipe, {**base, "eval_transform": "resize_centre"})
        assert note.text == f"eval transform `resize_centre`, not the original pipeline's `{recipe}`"
    (gpu,) = run_notes("cnnspot", {**base, "eval_transform": "cnndetection", "decoder": "nvjpeg"})
    assert "`nvjpeg` decoder" in gpu.text and "fast_jpeg_decode" not in gpu.text
