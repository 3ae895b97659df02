"""Generator ids given where names are expected ("1" for sdv14) are normalised to names everywhere
results are keyed by name (issue #15 item 9): otherwise Table 5's training-subset column is empty."""

from __future__ import annotations

import json
from pathlib import Path

from genimage_fast.engine.evaluate import training_subset_accuracy
from genimage_fast.reports.protocol import load_protocol
from genimage_fast.reports.runs import load_run_results


def test_results_with_generator_ids_still_fill_the_training_subset_column(tmp_path: Path) -> None:
    accuracy = {"none": {"sdv14": 0.9, "adm": 0.7, "mean": 0.8}, "jpeg:30": {"sdv14": 0.6, "adm": 0.5, "mean": 0.55}}
    (tmp_path / "results.json").write_text(json.dumps({"recipe": "demo", "train_generators": ["1"],
                                                       "accuracy": accuracy}))
    (run,) = load_run_results([tmp_path / "results.json"])
    assert run.train_generators == ("sdv14",)
    assert training_subset_accuracy(accuracy["jpeg:30"], list(run.train_generators)) == 0.6


def test_protocol_train_generators_given_as_ids_become_names() -> None:
    protocol = load_protocol(None, recipes="demo", train_generators="3,1")
    assert protocol.train_generators == ["sdv14", "adm"]
