"""The `make gpu-check` runner: a registry of time-boxed stages, one JSON report and one markdown table.

A stage is `fn(ctx: Context) -> dict` registered with `@stage(name, order=, budget_s=, owner=)` in a
module listed in STAGE_MODULES (each team adds its own module; a listed module that does not exist
yet is reported, not fatal). Stages run in `order`; one whose minimum time no longer fits in the
run's budget is skipped with the reason. On a GPU each stage runs in a child process killed at its
box (a hang or a CUDA fault costs one stage, not the run); `--dry` runs every stage in-process on
the CPU with small sizes (`ctx.pick(gpu, dry)`), which is what `make test` checks. The report is
rewritten after every stage, so a killed run still leaves what it measured. Schema: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from genimage_fast.atomic import atomic_write_text
from genimage_fast.registry import Registry

SCHEMA = "genimage-fast/gpu-check/1"
# Stage modules, in no particular order (stages carry their own `order`). Owners add theirs here.
STAGE_MODULES = (
    "genimage_fast.bench.gpucheck.core",  # GPU-KERNELS: environment, CUDA tests
    "genimage_fast.bench.gpucheck.kernels",  # GPU-KERNELS: kernels vs reference, sweeps, API, syncs
    "genimage_fast.bench.gpucheck.source_eval",  # GPU-KERNELS: source-space eval on the device vs PIL, img/s
    "genimage_fast.bench.gpucheck.train",  # GPU-TRAIN: step syncs, prefetch, engine img/s, nvJPEG, compile
)
DEFAULT_BUDGET_S = 450.0  # 7.5 min: `make gpu-check` must finish in 8 including the install
JSON_NAME, MD_NAME = "gpu-check.json", "gpu-check.md"


@dataclass
class Context:
    """What a stage gets: the device, dry mode, a folder for artefacts and its own deadline."""

    device: torch.device
    dry: bool
    out: Path
    deadline: float  # time.monotonic() at which this stage's box ends
    notes: list[str] = field(default_factory=list)  # free-form remarks copied into the report

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def pick(self, gpu: Any, dry: Any) -> Any:
        """A size for the real run or for the dry run."""
        return dry if self.dry else gpu

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@dataclass(frozen=True)
class Stage:
    name: str
    fn: Callable[[Context], dict]
    order: int  # run order (core 0-19, kernels 20-49, train 50-99)
    budget_s: float  # the box on the GPU machine
    min_s: float  # skipped when less than this is left in the run
    owner: str


STAGES: Registry[Stage] = Registry("gpu-check stage")


def stage(name: str, *, order: int, budget_s: float, owner: str,
          min_s: float | None = None) -> Callable[[Callable[[Context], dict]], Callable[[Context], dict]]:
    """Register fn(ctx) -> dict (JSON-able; a "rows" list of dicts becomes a markdown table)."""

    def add(fn: Callable[[Context], dict]) -> Callable[[Context], dict]:
        STAGES.add(name, Stage(name, fn, order, float(budget_s),
                               float(min_s if min_s is not None else budget_s / 3), owner))
        return fn

    return add


def load_stage_modules() -> dict[str, str]:
    """Import every listed stage module; module -> "ok" | "absent" | the import error."""
    state: dict[str, str] = {}
    for module in STAGE_MODULES:
        try:
            importlib.import_module(module)
            state[module] = "ok"
        except ModuleNotFoundError as exc:
            state[module] = "absent" if exc.name == module else f"error: {exc!r}"
        except Exception as exc:  # a broken module must not hide the other teams' stages
            state[module] = f"error: {exc!r}"
    return state


def ordered_stages(only: list[str] | None = None) -> list[Stage]:
    stages = sorted((STAGES.get(n) for n in STAGES.names()), key=lambda s: (s.order, s.name))
    if only:
        for name in only:
            STAGES.get(name)  # unknown names: a clear error listing the stages
        stages = [s for s in stages if s.name in only]
    return stages


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _call(st: Stage, ctx: Context) -> dict[str, Any]:
    try:
        result = st.fn(ctx)
        if not isinstance(result, dict):
            raise TypeError(f"stage {st.name} returned {type(result).__name__}, not a dict")
        return {"status": "ok", "result": _jsonable(result), "notes": ctx.notes}
    except Exception as exc:
        tb = traceback.format_exc().strip().splitlines()
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": tb[-12:],
                "notes": ctx.notes}


def _call_isolated(st: Stage, device: torch.device, out: Path, box: float, dry: bool) -> dict[str, Any]:
    """Run one stage in a child process, killed at its box."""
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "genimage_fast.bench.gpucheck", "--child", st.name, "--child-result",
               str(result_path), "--device", str(device), "--out", str(out), "--budget", str(box)] + ["--dry"] * dry
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=box + 10)
        except subprocess.TimeoutExpired as exc:
            tail = (exc.stderr or b"")[-2000:]
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            return {"status": "timeout", "error": f"killed after {box:.0f}s", "stderr_tail": tail.splitlines()[-12:]}
        if result_path.exists():
            return json.loads(result_path.read_text())
        return {"status": "failed", "error": f"child exited {proc.returncode} without a result",
                "stderr_tail": proc.stderr.splitlines()[-20:]}


def environment(device: torch.device) -> dict[str, Any]:
    from genimage_fast.bench.common import machine_info

    info = machine_info()
    info["device"] = str(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_GiB=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def render_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: a summary table of stages, then each stage's figures."""
    env = report["environment"]
    lines = [f"# gpu-check {'(dry run) ' if report['dry'] else ''}{report['started']}", "",
             f"device {env.get('device')} {env.get('gpu', '')}, torch {env.get('torch')}, "
             f"python {env.get('python')}, {env.get('cpus')} CPUs; {report['elapsed_s']:.0f}s of "
             f"{report['budget_s']:.0f}s", "", "| stage | owner | status | seconds | note |", "|---|---|---|---|---|"]
    for rec in report["stages"]:
        note = rec.get("reason") or rec.get("error") or ""
        lines.append(f"| {rec['name']} | {rec['owner']} | {rec['status']} | {rec.get('seconds', 0):.1f} | "
                     f"{str(note)[:120].replace('|', '/')} |")
    for rec in report["stages"]:
        result = rec.get("result") or {}
        if not result:
            continue
        lines += ["", f"## {rec['name']}", ""]
        for key, value in result.items():
            if key != "rows":
                lines.append(f"- {key}: {json.dumps(value, default=str)[:300]}")
        rows = result.get("rows") or []
        if rows:
            cols = list(dict.fromkeys(k for row in rows for k in row))
            lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(row.get(c, "")) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _write(report: dict[str, Any], out: Path) -> None:
    atomic_write_text(out / JSON_NAME, json.dumps(report, indent=1, default=str))
    atomic_write_text(out / MD_NAME, render_markdown(report))


def run_check(out: str | Path, dry: bool = False, budget_s: float = DEFAULT_BUDGET_S, device: str | None = None,
              only: list[str] | None = None, isolate: bool | None = None) -> dict[str, Any]:
    """Run the stages; write out/gpu-check.json and out/gpu-check.md (after each stage); return the report."""
    t0 = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device or ("cpu" if dry or not torch.cuda.is_available() else "cuda"))
    isolate = (not dry) if isolate is None else isolate
    modules = load_stage_modules()
    report: dict[str, Any] = {
        "schema": SCHEMA, "dry": dry, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "budget_s": budget_s, "elapsed_s": 0.0, "environment": environment(dev), "modules": modules, "stages": [],
    }
    for st in ordered_stages(only):
        left = budget_s - (time.monotonic() - t0)
        rec: dict[str, Any] = {"name": st.name, "owner": st.owner, "order": st.order, "budget_s": st.budget_s}
        if left < (0.0 if dry else st.min_s):
            rec.update(status="skipped", seconds=0.0, reason=f"time short: {left:.0f}s left, needs {st.min_s:.0f}s")
        else:
            box = min(st.budget_s, left)
            s0 = time.monotonic()
            if isolate:
                rec.update(_call_isolated(st, dev, out, box, dry))
            else:
                rec.update(_call(st, Context(dev, dry, out, time.monotonic() + box)))
            rec["seconds"] = round(time.monotonic() - s0, 2)
        report["stages"].append(rec)
        report["elapsed_s"] = round(time.monotonic() - t0, 2)
        _write(report, out)
    report["elapsed_s"] = round(time.monotonic() - t0, 2)
    report["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _write(report, out)
    return report


def _child(name: str, result_path: str, device: str, out: str, box: float, dry: bool) -> int:
    load_stage_modules()
    st = STAGES.get(name)
    rec = _call(st, Context(torch.device(device), dry, Path(out), time.monotonic() + box))
    atomic_write_text(result_path, json.dumps(rec, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m genimage_fast.bench.gpucheck", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/gpu-check", help="folder for gpu-check.json / .md and artefacts")
    p.add_argument("--dry", action="store_true", help="CPU, small sizes: the stages' plumbing only")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds for all stages")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --dry)")
    p.add_argument("--only", default="", help="comma-separated stage names")
    p.add_argument("--in-process", action="store_true", help="no child process per stage")
    p.add_argument("--list", action="store_true", help="list the stages and exit")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-result", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return _child(a.child, a.child_result, a.device, a.out, a.budget, a.dry)
    if a.list:
        mods = load_stage_modules()
        text = "\n".join(f"{s.order:>3} {s.name:<28} {s.owner:<12} box {s.budget_s:.0f}s" for s in ordered_stages())
        sys.stdout.write(text + "\n" + json.dumps(mods, indent=1) + "\n")
        return 0
    if not a.dry and not torch.cuda.is_available() and (a.device or "cuda").startswith("cuda"):
        sys.stderr.write("error: no CUDA device; use --dry on a CPU machine\n")
        return 2
    only = [s for s in a.only.split(",") if s] or None
    report = run_check(a.out, dry=a.dry, budget_s=a.budget, device=a.device, only=only,
                       isolate=False if a.in_process else None)
    sys.stdout.write(render_markdown(report))
    bad = [r["name"] for r in report["stages"] if r["status"] in ("failed", "timeout")]
    sys.stdout.write(f"\nwrote {Path(a.out) / JSON_NAME}; {len(bad)} stage(s) failed{': ' if bad else ''}"
                     f"{', '.join(bad)}\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
