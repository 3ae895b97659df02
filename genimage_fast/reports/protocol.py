"""The paper's evaluation protocol end to end: convert → train per (recipe, generator) → eval → report.

Task 1 (cross-generator): each detector is trained on one generator's subset and tested on all
eight; Task 2 (degraded images): the same runs are tested under the degradation specs. A protocol
file (`recipes/protocols/task1_task2.yaml`) names the recipes, training generators, record format
and specs; command-line flags override it. Layout of OUT:

    OUT/records/                      the converted tree (one record set, all generators)
    OUT/runs/<recipe>/<generator>/    train's run dir, plus eval's results.json / results.md
    OUT/report/                       report.md, report.json, figure3_<method>.png

Re-running continues: a finished conversion, a run with summary.json and an eval whose results.json
already holds the same specs are reused; a run with only a checkpoint is resumed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES, generator_names
from genimage_fast.registry import close_matches

REPO_RECIPES = Path(__file__).resolve().parents[2] / "recipes"  # the checkout's recipes (editable install)
TASK2 = ["none", "lr:112", "lr:64", "jpeg:65", "jpeg:30", "blur:3", "blur:5"]


@dataclass
class Protocol:
    """What to run; the defaults are the paper's Task 1 (trained on SD V1.4) + Task 2 for ResNet-50."""

    recipes: list[str] = field(default_factory=lambda: ["resnet50"])
    train_generators: list[str] = field(default_factory=lambda: ["sdv14"])  # or ["all"]: the 8x8 matrix
    format: str = "dali"
    store: str = "original"
    max_side: int | None = None
    degrade: list[str] = field(default_factory=lambda: list(TASK2))
    degrade_at: str = "source"  # the paper's: degrade the full test image (eval --degrade-at)
    set: list[str] = field(default_factory=list)  # --set overrides for every training run
    eval_batch_size: int = 64


def _as_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise GenImageError(f"protocol key {key!r}: expected a list or comma-separated string, got {value!r}")


def load_protocol(path: str | Path | None = None, **overrides: Any) -> Protocol:
    """A protocol file (optional) with explicit values on top; unknown keys are an error naming them."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise GenImageError(f"protocol file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise GenImageError(f"protocol {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise GenImageError(f"protocol {path}: expected a mapping of keys")
    data.update({k: v for k, v in overrides.items() if v is not None})
    names = [f.name for f in dataclasses.fields(Protocol)]
    for key in data:
        if key not in names:
            raise GenImageError(f"unknown protocol key {key!r}{close_matches(str(key), names)}")
    for key in ("recipes", "train_generators", "degrade", "set"):
        if key in data:
            data[key] = _as_list(data[key], key)
    protocol = Protocol(**data)
    if protocol.train_generators == ["all"]:
        protocol.train_generators = list(GENERATOR_NAMES)
    # unknown names: one clear error; ids ("1") become names, which results and Table 5 use
    protocol.train_generators = generator_names(protocol.train_generators)
    if not protocol.recipes:
        raise GenImageError("the protocol names no recipe")
    return protocol


def resolve_recipe(name: str) -> Path:
    """A recipe path, or a name looked up in ./recipes then in the checkout's recipes/."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise GenImageError(f"recipe not found: {path}")
        return path
    for folder in (Path.cwd() / "recipes", REPO_RECIPES):
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = sorted({p.stem for folder in (Path.cwd() / "recipes", REPO_RECIPES) if folder.is_dir()
                    for p in folder.glob("*.yaml")})
    raise GenImageError(f"unknown recipe {name!r}{close_matches(name, known)}; choose from: {', '.join(known)}")


def _evaluated(run_dir: Path, specs: Sequence[str], degrade_at: str = "source") -> bool:
    """True when run_dir's results.json is newer than its training and holds exactly these specs,
    degraded where asked (results without a recorded protocol predate source degradation: redone)."""
    results, summary = run_dir / "results.json", run_dir / "summary.json"
    if not results.is_file() or not summary.is_file():
        return False
    try:
        done = json.loads(results.read_text())
    except json.JSONDecodeError:
        return False
    where = (done.get("protocol") or {}).get("degrade_at")
    return (done.get("degrade") == list(specs) and where == degrade_at
            and results.stat().st_mtime >= summary.stat().st_mtime)


def run_protocol(src: str | Path, out: str | Path, protocol: Protocol,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every (recipe, training generator) pair; returns the report's data (report.json + markdown)."""
    from genimage_fast.engine.evaluate import check_degrade_at, evaluate, parse_specs
    from genimage_fast.engine.train import train
    from genimage_fast.records.convert import convert
    from genimage_fast.reports.report import report

    say = progress or (lambda _msg: None)
    out = Path(out)
    specs = parse_specs(protocol.degrade)  # fail on a bad spec before hours of training
    check_degrade_at(protocol.degrade_at)
    recipes = {name: resolve_recipe(name) for name in protocol.recipes}
    records = out / "records"
    say(f"convert {src} -> {records} ({protocol.format}, store {protocol.store})")
    convert(src, records, fmt=protocol.format, store=protocol.store, max_side=protocol.max_side, progress=False)

    result_files = []
    for name, recipe in recipes.items():
        for generator in protocol.train_generators:
            run_dir = out / "runs" / Path(name).stem / generator
            if (run_dir / "summary.json").is_file():
                say(f"train {name} on {generator}: done before ({run_dir})")
            else:
                resume = (run_dir / "checkpoints" / "last.pt").is_file()
                say(f"train {name} on {generator}{' (resuming)' if resume else ''} -> {run_dir}")
                overrides = [*protocol.set, f"data.generators=[{generator}]"]
                train(recipe, records, out=run_dir, overrides=overrides, resume=resume)
            if _evaluated(run_dir, specs, protocol.degrade_at):
                say(f"eval {name} on {generator}: done before")
            else:
                say(f"eval {name} trained on {generator}: {', '.join(specs)}")
                evaluate(run_dir, records, degrade=specs, out=run_dir, batch_size=protocol.eval_batch_size,
                         degrade_at=protocol.degrade_at)
            result_files.append(run_dir / "results.json")
    say(f"report -> {out / 'report'}")
    return report(result_files, out / "report")


def protocol_command(src: str, out: str, recipes: str | None = None, train_generators: str | None = None,
                     fmt: str | None = None, degrade: str | None = None, overrides: Sequence[str] = (),
                     protocol: str | None = None, degrade_at: str | None = None) -> int:
    """`genimage-fast protocol SRC --out DIR [--protocol FILE]`: flags given override the file's values."""
    spec = load_protocol(protocol, recipes=recipes, train_generators=train_generators, format=fmt, degrade=degrade,
                         degrade_at=degrade_at)
    spec.set = [*spec.set, *overrides]

    def say(message: str) -> None:
        sys.stdout.write(f"[protocol] {message}\n")
        sys.stdout.flush()

    data = run_protocol(src, out, spec, progress=say)
    sys.stdout.write(data["markdown"])
    return 0
