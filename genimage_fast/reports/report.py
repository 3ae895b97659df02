"""`genimage-fast report`: the paper's Task 1 and Task 2 tables from several runs, beside the paper's.

Writes into OUT: `report.md` (percent tables in the paper's layout, each followed by the published
numbers and the difference), `report.json` (the same tables as fractions 0–1, plus the inputs) and
`figure3_<method>.png` (the cross-generator heatmap) for every method with single-generator runs.
Each run is listed with the protocol that produced it (results.json's `protocol`), and a cell the
paper's pipeline could not have produced the same way carries a footnote mark `[n]`, explained under
its table (reports/fidelity.py: crop-space degradation, reduced-scale decode, a non-original eval
transform, records that changed the pixels, selection on val, no protocol recorded).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genimage_fast.atomic import atomic_write_text
from genimage_fast.engine.evaluate import (
    MISSING,
    describe_protocol,
    format_percent,
    generator_columns,
    markdown_table,
    method_title,
    spec_title,
)
from genimage_fast.generators import BY_NAME, GENERATOR_NAMES
from genimage_fast.reports import tables
from genimage_fast.reports.fidelity import Footnotes, Note, cell_notes, run_notes
from genimage_fast.reports.heatmap import save_heatmap
from genimage_fast.reports.paper_numbers import (
    PAPER_TABLES,
    REFERENCE_TABLES,
    TABLE2,
    TABLE3,
    TABLE4,
    TABLE5,
    PaperTable,
)
from genimage_fast.reports.runs import ALL, RunResult, load_run_results
from genimage_fast.reports.tables import AVG, Table

PAPER_TRAIN_KEY = "sdv14"  # Tables 3 and 5 of the paper train on SD V1.4


def train_title(train_key: str) -> str:
    if train_key == ALL:
        return "all generators"
    return " + ".join(BY_NAME[g].title if g in BY_NAME else g for g in train_key.split("+"))


ROW_TITLES: dict[str, Callable[[str], str]] = {
    "train_generator": train_title,
    "method": method_title,
    "label": str,  # rows already titled, e.g. "ResNet-50 (trained on all generators)"
}
FIRST_COLUMN = {"train_generator": "Training Subset", "method": "Method", "label": "Method"}


def _row_title(row_kind: str) -> Callable[[str], str]:
    return ROW_TITLES[row_kind]


def _header(first: str, columns: Sequence[str], avg: str) -> list[str]:
    titles = [BY_NAME[c].title if c in BY_NAME else spec_title(c) for c in columns]
    return [first, *titles, avg]


def _cell(value: float | None, mark: str) -> str:
    text = format_percent(value)
    return text if text == MISSING else text + mark


def _render(table: Table, columns: Sequence[str], row_kind: str, avg: str = "Avg Acc.(%)",
            marks: dict[str, str] | None = None) -> str:
    """A table in percent; `marks` (row -> ' [1,2]') footnotes every filled cell of that row."""
    first = FIRST_COLUMN[row_kind]
    title = _row_title(row_kind)
    marks = marks or {}
    rows = [[title(name), *(_cell(row.get(c), marks.get(name, "")) for c in [*columns, AVG])]
            for name, row in table.items()]
    return markdown_table(_header(first, columns, avg), rows)


def _paper_rows(paper: PaperTable, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """The published rows for our rows; all of them when none of ours is in the paper."""
    overlap = [n for n in names if n in paper.rows]
    return {n: paper.rows[n] for n in (overlap or paper.rows)}


def _as_fractions(rows: dict[str, dict[str, float]]) -> Table:
    return {name: {k: v / 100.0 for k, v in row.items()} for name, row in rows.items()}


def _difference(ours: Table, paper: PaperTable, columns: Sequence[str]) -> list[list[str]]:
    """Ours minus published, in points; Avg only when both average the same columns."""
    same_columns = tuple(columns) == paper.columns
    out = []
    for name, row in ours.items():
        if name not in paper.rows:
            continue
        cells = []
        for c in [*columns, AVG]:
            mine, theirs = row.get(c), paper.rows[name].get(c)
            if mine is None or theirs is None or (c == AVG and not same_columns):
                cells.append(MISSING)
            else:
                cells.append(f"{round(100 * mine - theirs, 1) + 0.0:+.1f}")  # + 0.0: no '-0.0'

        out.append([_row_title(paper.row_kind)(name), *cells])
    return out


def _with_paper(ours: Table, paper: PaperTable, columns: Sequence[str], avg: str = "Avg Acc.(%)",
                marks: dict[str, str] | None = None, legend: str = "") -> str:
    """Ours (footnoted), then the published rows (percent as printed) and ours minus the paper, in points."""
    text = _render(ours, columns, paper.row_kind, avg, marks) + legend
    published = _as_fractions(_paper_rows(paper, list(ours)))
    text += (f"\nPublished ({paper.reference}: {paper.caption}):\n\n"
             + _render(published, paper.columns, paper.row_kind, avg))
    diff = _difference(ours, paper, columns)
    if diff:
        header = _header(FIRST_COLUMN[paper.row_kind], columns, "Avg")
        text += "\nOurs − paper (points):\n\n" + markdown_table(header, diff)
    return text


def _label(method: str, train_key: str) -> str:
    return f"{method_title(method)} (trained on {train_title(train_key)})"


def _labelled(by_training_set: dict[str, Table]) -> Table:
    """{train_key: {method: row}} -> {"Method (trained on X)": row}, for one combined table."""
    return {_label(method, key): row for key, table in by_training_set.items() for method, row in table.items()}


class _Marks:
    """The footnote marks of each run's cells (reports/fidelity.py), numbered across the report."""

    def __init__(self, runs: Sequence[RunResult]) -> None:
        self.notes = {(r.method, r.train_key): run_notes(r.method, r.results.get("protocol")) for r in runs}
        self.protocols = {(r.method, r.train_key): r.results.get("protocol") or {} for r in runs}
        self.footnotes = Footnotes()
        self._rows: list[tuple[str, str]] = []  # the runs of the table being written
        self._degraded = False

    def run(self, method: str, train_key: str, degraded: bool) -> str:
        self._rows.append((method, train_key))
        self._degraded = self._degraded or degraded
        return self.footnotes.mark(cell_notes(self.notes.get((method, train_key), []), degraded))

    def method(self, method: str, train_keys: Sequence[str]) -> str:
        """Table 4: a row averages several runs; it carries every clean-cell note of any of them."""
        merged: dict[str, Note] = {}
        for key in train_keys:
            self._rows.append((method, key))
            merged.update({n.key: n for n in cell_notes(self.notes.get((method, key), []), False)})
        return self.footnotes.mark(list(merged.values()))

    def labelled(self, by_training_set: dict[str, Table], degraded: bool) -> dict[str, str]:
        return {_label(m, key): self.run(m, key, degraded) for key, table in by_training_set.items() for m in table}

    def legend(self) -> str:
        """The protocol of the table just written (its runs' distinct values), then its footnotes."""
        keys = (["degrade_at"] if self._degraded else []) + ["eval_transform", "decoder", "backend", "selection"]
        parts = []
        for key in keys:
            values = sorted({str(self.protocols.get(row, {}).get(key, "not recorded")) for row in self._rows})
            parts.append(f"{key.replace('_', ' ')} {' / '.join(values)}")
        self._rows, self._degraded = [], False
        return f"\nProtocol: {'; '.join(parts)}.\n" + self.footnotes.legend()


def _cross_benchmark(runs: Sequence[RunResult], data: dict[str, Any]) -> list[str]:
    """Runs tested on other benchmarks: per benchmark, rows = method x training set, columns = its generators."""
    md: list[str] = []
    for bench in sorted({r.benchmark for r in runs} - {"genimage"}):
        mine = [r for r in runs if r.benchmark == bench]
        table: Table = {}
        for r in mine:
            acc = r.accuracy("none") or next(iter(r.results["accuracy"].values()))
            table[_label(r.method, r.train_key)] = {**{k: v for k, v in acc.items() if k != "mean"},
                                                    AVG: acc.get("mean")}
        columns = generator_columns({k: None for row in table.values() for k in row if k != AVG})
        data["cross_benchmark"][bench] = table
        md.append(f"\n### Trained on GenImage, tested on `{bench}` (accuracy, %)\n\n"
                  + _render(table, columns, "label"))
        specs = sorted({s for r in mine for s in r.results["accuracy"]} - {"none"})
        if specs:
            md.append(f"\n(degraded evaluations on `{bench}`: {', '.join(specs)}, in each run's results.md)\n")
    return md


def _reference_tables() -> list[str]:
    """Published numbers beyond the GenImage paper (paper_numbers.REFERENCE_TABLES), cited."""
    md = ["\n## Reference numbers beyond the paper\n"]
    for table in REFERENCE_TABLES.values():
        rows = [[row, *(format_percent(cells[c] / 100.0) for c in [*table.columns, AVG])]
                for row, cells in table.rows.items()]
        md.append(f"\n{table.caption}. Source: {table.reference}.\n\n"
                  + markdown_table(_header("Setting", table.columns, table.avg_header), rows))
    return md


def build_report(runs: Sequence[RunResult], out: Path) -> tuple[dict[str, Any], str]:
    """All tables (fractions) and the markdown; draws the heatmaps into `out`."""
    elsewhere = [r for r in runs if r.benchmark != "genimage"]  # tested on other benchmarks
    runs = [r for r in runs if r.benchmark == "genimage"]
    gens = list(GENERATOR_NAMES)
    marks = _Marks(runs)
    data: dict[str, Any] = {
        "inputs": [{"source": str(r.source), "method": r.method, "trained_on": r.train_key,
                    "protocol": r.results.get("protocol")} for r in runs],
        "table2": {}, "table3": {}, "table4": {}, "table5": {}, "figures": [], "cross_benchmark": {},
        "paper": {key: {"reference": t.reference, "caption": t.caption, "rows": _as_fractions(t.rows)}
                  for key, t in PAPER_TABLES.items()},
    }
    md = ["# GenImage report\n\n", f"{len(runs) + len(elsewhere)} evaluated run(s):\n\n"]
    md += [f"- {method_title(r.method)} trained on {train_title(r.train_key)}"
           f"{'' if r.benchmark == 'genimage' else f', tested on {r.benchmark}'}: `{r.source}`\n"
           f"  - protocol: {describe_protocol(r.results.get('protocol'))}\n" for r in [*runs, *elsewhere]]
    md.append("\nA cell marked [n] could not have come out of the paper's pipeline the same way: see the note "
              "under its table.\n")

    md.append("\n## Task 1: cross-generator image classification\n")
    for method in tables.methods(runs):
        matrix = tables.cross_generator_matrix(runs, method)
        if not matrix:
            continue
        data["table2"][method] = matrix
        md.append(f"\n### Table 2: cross-validation with {method_title(method)} (rows: training subset)\n\n")
        row_marks = {key: marks.run(method, key, degraded=False) for key in matrix}
        # the paper's Table 2 is ResNet-50 only
        md.append(_with_paper(matrix, TABLE2, gens, marks=row_marks, legend=marks.legend()) if method == "resnet50"
                  else _render(matrix, gens, "train_generator", marks=row_marks) + marks.legend())
        figure = save_heatmap(matrix, out / f"figure3_{method}.png",
                              f"Figure 3: generator correlations, {method_title(method)}")
        data["figures"].append(figure.name)
        md.append(f"\n![Figure 3, {method_title(method)}]({figure.name})\n")
    if not data["table2"]:
        md.append("\nTable 2 / Figure 3 need runs trained on a single generator each "
                  "(`genimage-fast protocol SRC --train-generators all`).\n")

    for key in tables.training_sets(runs):
        data["table3"][key] = tables.methods_on_training_set(runs, key)
    if PAPER_TRAIN_KEY in data["table3"]:
        md.append("\n### Table 3: methods trained on SD V1.4\n\n")
        table3 = data["table3"][PAPER_TRAIN_KEY]
        row_marks = {m: marks.run(m, PAPER_TRAIN_KEY, degraded=False) for m in table3}
        md.append(_with_paper(table3, TABLE3, gens, marks=row_marks, legend=marks.legend()))
    # single-generator runs already appear in Table 2; other training sets (e.g. all) get one table
    rest = {k: t for k, t in data["table3"].items() if k not in GENERATOR_NAMES}
    others = _labelled(rest)
    if others:
        md.append("\n### Table 3 layout: other training sets\n\n"
                  + _render(others, gens, "label", marks=marks.labelled(rest, degraded=False)) + marks.legend())

    table4, used = tables.method_averages(runs)
    if table4:
        data["table4"] = {"rows": table4, "training_subsets": used}
        md.append("\n### Table 4: mean over the models trained on each generator\n\n")
        row_marks = {m: marks.method(m, [g for g in GENERATOR_NAMES if (m, g) in marks.notes]) for m in table4}
        md.append(_with_paper(table4, TABLE4, gens, marks=row_marks, legend=marks.legend()))
        counts = ", ".join(f"{method_title(m)} {n}/8" for m, n in used.items())
        md.append(f"\nTraining subsets averaged: {counts}\n")

    md.append("\n## Task 2: degraded image classification\n")
    specs = tables.degraded_specs(runs)
    if not specs:
        md.append("\nNo degraded evaluations (`genimage-fast eval ... --degrade lr:112,lr:64,jpeg:65,jpeg:30,"
                  "blur:3,blur:5`).\n")
    for key in tables.training_sets(runs) if specs else ():
        data["table5"][key] = tables.degraded_table(runs, key, specs)
    if PAPER_TRAIN_KEY in data["table5"]:
        md.append("\n### Table 5: methods trained on SD V1.4, tested on degraded SD V1.4 images\n\n")
        table5 = data["table5"][PAPER_TRAIN_KEY]
        row_marks = {m: marks.run(m, PAPER_TRAIN_KEY, degraded=True) for m in table5}
        md.append(_with_paper(table5, TABLE5, specs, "Avg Acc(%)", marks=row_marks, legend=marks.legend()))
    rest = {k: t for k, t in data["table5"].items() if k != PAPER_TRAIN_KEY}
    others = _labelled(rest)
    if others:
        md.append("\n### Table 5 layout: other training sets, each tested on its own training subset(s) "
                  "(all subsets: their mean)\n\n"
                  + _render(others, specs, "label", "Avg Acc(%)", marks=marks.labelled(rest, degraded=True))
                  + marks.legend())
    if elsewhere:
        md.append("\n## Cross-benchmark: trained on GenImage, tested on other benchmarks\n")
        md += _cross_benchmark(elsewhere, data)
    md += _reference_tables()
    data["reference"] = {key: {"reference": t.reference, "caption": t.caption, "columns": list(t.columns),
                               "rows": _as_fractions(t.rows)} for key, t in REFERENCE_TABLES.items()}
    data["notes"] = marks.footnotes.as_dict()
    return data, "".join(md)


def report(results: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Load the runs' results, write report.md / report.json / figures into `out`; returns report.json's data."""
    out = Path(out)
    runs = load_run_results(list(results))
    out.mkdir(parents=True, exist_ok=True)
    data, markdown = build_report(runs, out)
    atomic_write_text(out / "report.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown)
    data["markdown"] = markdown
    return data


def report_command(results: Sequence[str], out: str) -> int:
    """`genimage-fast report RESULTS.json ... --out DIR`: prints report.md."""
    data = report(results, out)
    sys.stdout.write(data["markdown"])
    figures = ", ".join(data["figures"]) or "no figures"
    sys.stdout.write(f"\nwrote {Path(out) / 'report.md'}, report.json, {figures}\n")
    return 0
