"""The GenImage paper's published accuracies (percent), transcribed from its tables.

Source: Zhu et al., "GenImage: A Million-Scale Benchmark for Detecting AI-Generated Image",
NeurIPS 2023 Datasets and Benchmarks (`papers/genimage-paper.txt`). Every table keeps its reference so a
report can cite where a number came from. Columns follow `generators.GENERATOR_NAMES` (paper order).
"""

from __future__ import annotations

from dataclasses import dataclass

from genimage_fast.engine.evaluate import METHOD_TITLES, method_title, spec_title
from genimage_fast.generators import GENERATOR_NAMES

__all__ = ["METHOD_TITLES", "PAPER_TABLES", "SUPPLEMENT_TABLES", "SUPP_TABLE1", "TASK2_SPECS", "PaperTable",
           "method_title", "spec_title"]

# Task 2 columns of Table 5, in the paper's order, as degradation specs -> the paper's headers.
TASK2_SPECS: tuple[str, ...] = ("lr:112", "lr:64", "jpeg:65", "jpeg:30", "blur:3", "blur:5")


@dataclass(frozen=True)
class PaperTable:
    """One published table: rows keyed by name, each a mapping column -> percent, plus 'avg'."""

    reference: str  # where it is printed, e.g. "GenImage paper, Table 2"
    caption: str
    row_kind: str  # "train_generator" or "method"
    columns: tuple[str, ...]  # generator names or degradation specs
    rows: dict[str, dict[str, float]]
    avg_header: str = "Avg Acc.(%)"  # the last column's header where `report` prints the table as published


def _table(values: dict[str, list[float]], columns: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Rows given as the printed list (columns then Avg) -> {row: {column: v, ..., 'avg': v}}."""
    out = {}
    for row, numbers in values.items():
        if len(numbers) != len(columns) + 1:
            raise ValueError(f"row {row!r}: expected {len(columns) + 1} numbers, got {len(numbers)}")
        out[row] = {**dict(zip(columns, numbers[:-1], strict=True)), "avg": numbers[-1]}
    return out


TABLE2 = PaperTable(
    reference="GenImage paper, Table 2",
    caption="ResNet-50 cross-validation: rows = training subset, columns = testing subset",
    row_kind="train_generator",
    columns=GENERATOR_NAMES,
    rows=_table(
        {
            "midjourney": [98.8, 76.4, 76.9, 64.1, 78.9, 71.4, 52.5, 50.1, 71.1],
            "sdv14": [54.9, 99.9, 99.7, 53.5, 61.9, 98.2, 56.6, 52.0, 72.1],
            "sdv15": [54.4, 99.8, 99.9, 52.7, 60.1, 98.5, 56.9, 51.3, 71.7],
            "adm": [58.6, 53.1, 53.2, 99.0, 97.1, 53.0, 61.5, 88.3, 70.4],
            "glide": [50.7, 50.0, 50.1, 56.0, 99.9, 50.3, 51.0, 74.0, 60.2],
            "wukong": [54.5, 99.7, 99.6, 51.4, 58.3, 99.9, 58.7, 50.9, 71.6],
            "vqdm": [50.1, 50.0, 50.0, 50.7, 60.1, 50.2, 99.9, 66.8, 59.7],
            "biggan": [49.9, 49.9, 49.9, 50.6, 68.4, 49.9, 50.6, 99.9, 58.6],
        },
        GENERATOR_NAMES,
    ),
)

TABLE3 = PaperTable(
    reference="GenImage paper, Table 3",
    caption="Methods trained on SD V1.4, evaluated on each testing subset",
    row_kind="method",
    columns=GENERATOR_NAMES,
    rows=_table(
        {
            "resnet50": [54.9, 99.9, 99.7, 53.5, 61.9, 98.2, 56.6, 52.0, 72.1],
            "deit_s": [55.6, 99.9, 99.8, 49.8, 58.1, 98.9, 56.9, 53.5, 71.6],
            "swin_t": [62.1, 99.9, 99.8, 49.8, 67.6, 99.1, 62.3, 57.6, 74.8],
            "cnnspot": [52.8, 96.3, 95.9, 50.1, 39.8, 78.6, 53.4, 46.8, 64.2],
            "spec": [52.0, 99.4, 99.2, 49.7, 49.8, 94.8, 55.6, 49.8, 68.8],
            "f3net": [50.1, 99.9, 99.9, 49.9, 50.0, 99.9, 49.9, 49.9, 68.7],
            "gramnet": [54.2, 99.2, 99.1, 50.3, 54.6, 98.9, 50.8, 51.7, 69.9],
        },
        GENERATOR_NAMES,
    ),
)

TABLE4 = PaperTable(
    reference="GenImage paper, Table 4",
    caption="Eight models per method (one per training subset), averaged per testing subset",
    row_kind="method",
    columns=GENERATOR_NAMES,
    rows=_table(
        {
            "resnet50": [59.0, 72.3, 72.4, 59.7, 73.1, 71.4, 60.9, 66.6, 66.9],
            "deit_s": [60.7, 74.2, 74.2, 59.5, 71.1, 73.1, 61.7, 66.3, 67.6],
            "swin_t": [61.7, 76.0, 76.1, 61.3, 76.9, 75.1, 65.8, 69.5, 70.3],
            "cnnspot": [58.2, 70.3, 70.2, 57.0, 57.1, 67.7, 56.7, 56.6, 61.7],
            "spec": [56.7, 72.4, 72.3, 57.9, 65.4, 70.3, 61.7, 64.3, 65.1],
            "f3net": [55.1, 73.1, 73.1, 66.5, 57.8, 72.3, 62.1, 56.5, 64.6],
            "gramnet": [58.1, 72.8, 72.7, 58.7, 65.3, 71.3, 57.8, 61.2, 64.7],
        },
        GENERATOR_NAMES,
    ),
)

TABLE5 = PaperTable(
    reference="GenImage paper, Table 5",
    caption="Methods trained on SD V1.4, evaluated on degraded SD V1.4 test images",
    row_kind="method",
    columns=TASK2_SPECS,
    rows=_table(
        {
            "resnet50": [96.2, 57.4, 51.9, 51.2, 97.9, 69.4, 70.6],
            "deit_s": [97.1, 54.0, 55.6, 50.5, 94.4, 67.2, 69.8],
            "swin_t": [97.4, 54.6, 52.5, 50.9, 94.5, 52.5, 67.0],
            "cnnspot": [50.0, 50.0, 97.3, 97.3, 97.4, 77.9, 78.3],
            "spec": [50.0, 49.9, 50.8, 50.4, 49.9, 49.9, 50.1],
            "f3net": [50.0, 50.0, 89.0, 74.4, 57.9, 51.7, 62.1],
            "gramnet": [98.8, 94.9, 68.8, 53.4, 95.9, 81.6, 82.2],
        },
        TASK2_SPECS,
    ),
)

PAPER_TABLES: dict[str, PaperTable] = {"table2": TABLE2, "table3": TABLE3, "table4": TABLE4, "table5": TABLE5}

# The supplement's Table 1 (`papers/genimage-supplement.txt`, section A): each method trained and tested on
# all of GenImage (2,581,167 training images, 100,000 test images); one accuracy per method, kept as 'avg'.
SUPP_TABLE1 = PaperTable(
    reference="GenImage supplement, Table 1",
    caption="Results of different methods trained and evaluated on the entire dataset",
    row_kind="method",
    columns=(),
    rows=_table({"resnet50": [99.5], "deit_s": [99.8], "swin_t": [99.9], "cnnspot": [98.3], "spec": [98.0],
                 "f3net": [92.1], "gramnet": [99.2]}, ()),
)
SUPPLEMENT_TABLES: dict[str, PaperTable] = {"supp_table1": SUPP_TABLE1}


# Beyond the GenImage paper: published numbers of the protocols and detectors the field compares
# against, in the same shape (percent; each caption says what was trained, what tested and which metric).
GROMMELT = PaperTable(
    reference="Grommelt et al. 2024, \"Fake or JPEG? Revealing Common Biases in Generated Image Detection "
              "Datasets\" (gendetection/UnbiasedGenImage)",
    caption="Trained on SD V1.4, mean accuracy over the 8 testing subsets: GenImage as released vs their "
            "unbiased protocol (fakes JPEG q96, reals q96 inside the size window; convert --protocol grommelt)",
    row_kind="method",
    columns=(),
    rows=_table({"resnet50 (GenImage as released)": [71.3], "resnet50 (grommelt protocol)": [83.4],
                 "swin_t (grommelt protocol)": [86.8]}, ()),
)

# NPR's GenImage numbers are in its repository's README only: the CVPR paper (arXiv 2312.10461) tests on
# ForenSynths, GANGen-Detection, DiffusionForensics, UniversalFakeDetect and Diffusion1kStep (its Tables 1-5,
# the README's "Table1 Test" .. "Table5 Test" rows), none of them GenImage. The README section
# "Detection Results / GenImage" (added in commit e2dbbe6, 2024-06-15; README.md lines 178-238 at 73cde1c)
# prints one model trained on SD V1.4 and tested on the other seven subsets, Acc. and A.P.; its Mean is
# over those seven. Its rows, in its order and spelling:
#   ADM 87.8 96.0 | biggan 80.7 89.8 | glide 93.2 99.1 | midjourney 91.7 97.9 | sdv5 94.4 99.9 |
#   vqdm 88.7 96.1 | wukong 94.0 99.7 | Mean 90.1 96.9
NPR_COLUMNS: tuple[str, ...] = tuple(g for g in GENERATOR_NAMES if g != "sdv14")
NPR = PaperTable(
    reference="Tan et al., CVPR 2024, \"Rethinking the Up-Sampling Operations in CNN-based Generative Network for "
              "Generalizable Deepfake Detection\" (NPR): chuangchuangtan/NPR-DeepfakeDetection README, "
              "\"Detection Results / GenImage\" (commit e2dbbe6); the paper itself has no GenImage table",
    caption="NPR trained on SD V1.4 only (their train.py --classes sdv4 --niter 1 --batch_size 32 --lr 0.0002 "
            "--cropSize 224, seed 70, 'translate and duplicate' (images under 224 px tiled) instead of resize: "
            "recipes/npr_genimage.yaml, not recipes/npr.yaml's ProGAN-style 50 epochs), tested on the 7 other "
            "subsets with no_crop=False: accuracy and average precision, Mean over those 7",
    row_kind="method",
    columns=NPR_COLUMNS,
    rows=_table({"npr (accuracy)": [91.7, 94.4, 87.8, 93.2, 94.0, 88.7, 80.7, 90.1],
                 "npr (AP)": [97.9, 99.9, 96.0, 99.1, 99.7, 96.1, 89.8, 96.9]}, NPR_COLUMNS),
    avg_header="Mean (%)",
)
REFERENCE_TABLES: dict[str, PaperTable] = {"grommelt": GROMMELT, "npr": NPR}
