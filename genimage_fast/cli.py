"""Command line: parses arguments and calls one entry function per command (nothing else).

Each command names `module:function`; the function takes the parsed options as keyword arguments
and returns an exit code (0 or None for success). GenImageError becomes one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from genimage_fast.errors import GenImageError

# command -> "module:function"; the module is imported only when its command runs.
ENTRY_POINTS: dict[str, str] = {
    "demo-data": "genimage_fast.sources.demo:demo_data_command",
    "scan": "genimage_fast.sources.scan:scan_command",
    "unpack": "genimage_fast.sources.unpack:unpack_command",
    "convert": "genimage_fast.records.convert:convert_command",
    "inspect": "genimage_fast.records.inspect:inspect_command",
    "verify": "genimage_fast.records.verify:verify_command",
    "spectra": "genimage_fast.spectral.figure:spectra_command",
    "train": "genimage_fast.engine.train:train_command",
    "eval": "genimage_fast.engine.evaluate:eval_command",
    "features": "genimage_fast.engine.features:features_command",
    "report": "genimage_fast.reports.report:report_command",
    "protocol": "genimage_fast.reports.protocol:protocol_command",
    "bench loader": "genimage_fast.bench.loader:bench_loader_command",
    "bench degrade": "genimage_fast.bench.degrade:bench_degrade_command",
    "bench spectral": "genimage_fast.bench.spectral:bench_spectral_command",
    "bench train": "genimage_fast.bench.train:bench_train_command",
    "bench convert": "genimage_fast.bench.convert:bench_convert_command",
    "bench eval": "genimage_fast.bench.eval:bench_eval_command",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (not usage + message) with exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= I < N")
    return index, count


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


# --set KEY=VALUE, repeated (--set a=1 --set b=2) or listed (--set a=1 b=2): all collected in order.
SET_ARGS: dict = dict(action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                      help="config overrides (list keys take a comma string: data.generators=sdv14,adm)")


def _add_common_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", dest="json_path", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genimage-fast", description="Fast training and evaluation of AI-generated-image "
                     "detectors on GenImage: convert, load, degrade, train, eval, report, bench.")
    parser.add_argument("--version", action="version", version="genimage-fast 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo-data", help="write a small deterministic GenImage-layout tree")
    p.add_argument("out", help="output folder")
    p.add_argument("--classes", type=_positive, default=4, help="ImageNet classes per generator (default 4)")
    p.add_argument("--per-class", type=_positive, default=8, help="fakes per class in train (default 8)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("scan", help="count a GenImage tree per generator x split x label")
    p.add_argument("src")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON keyed by generator name")

    p = sub.add_parser("unpack", help="verify and extract the release's multi-part zip pieces into the official tree")
    p.add_argument("archives", help="folder holding NAME.z01 ... NAME.zip (Google Drive -XXX suffixes are fine)")
    p.add_argument("out", help="output folder (the GenImage tree; _quarantine/ and unpack-rejects.jsonl beside it)")
    p.add_argument("--checksums", metavar="FILE", help="md5 list (GenImage's data/checksums.csv layout)")
    p.add_argument("--generators", help="only these subsets: names or ids, e.g. sdv14,adm")

    p = sub.add_parser("convert", help="convert a GenImage tree into FFCV / DALI record files")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--format", dest="fmt", required=True, choices=["ffcv", "dali"])
    p.add_argument("--split", default="all", choices=["train", "val", "test", "all"])
    p.add_argument("--generators", default=None, help="comma-separated generator names (default all)")
    p.add_argument("--store", default="original", help="original | lossless | raw | jpeg:Q | match-real")
    p.add_argument("--max-side", type=_positive, default=None,
                   help="downsize larger images first (changes the pixels the model sees; never a default)")
    p.add_argument("--workers", type=_positive, default=1)
    p.add_argument("--shard", type=_shard, default=(0, 1), help="convert slice I of N (I/N)")
    p.add_argument("--strict", action="store_true", help="fail on the first unreadable input")
    p.add_argument("--protocol", choices=("grommelt", "grommelt-balanced"), default=None,
                   help="Grommelt et al.'s unbiased records: fakes PIL JPEG q96, reals q96 inside the size window, "
                        "fakes subsampled (seed 42) to the reals' count (-balanced: per class)")
    p.add_argument("--no-progress", dest="progress", action="store_false")

    p = sub.add_parser("inspect", help="print a record set's manifest and samples")
    p.add_argument("records")
    p.add_argument("--json", dest="as_json", action="store_true")
    p.add_argument("--limit", type=int, default=20, help="records to list (0 = all)")

    p = sub.add_parser("verify", help="check every record file against the manifest's sha256")
    p.add_argument("records")

    p = sub.add_parser("spectra", help="average residual spectra per generator (paper Fig. 2)")
    p.add_argument("src", help="a GenImage tree or a record set")
    p.add_argument("--out", required=True)
    p.add_argument("--per-generator", type=_positive, default=1000)
    p.add_argument("--size", type=_positive, default=256, help="center crop size for the spectra")
    p.add_argument("--split", default="val")

    p = sub.add_parser("train", help="train a detector from a recipe")
    p.add_argument("recipe")
    p.add_argument("--data", default=None, help="record set (train split; val split for validation)")
    p.add_argument("--val", default=None, help="a separate record set for validation")
    p.add_argument("--out", default=None, help="run directory (default runs/RECIPE)")
    p.add_argument("--set", dest="overrides", **SET_ARGS)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and model size, then stop")

    p = sub.add_parser("eval", help="evaluate a run or checkpoint, optionally on degraded images")
    p.add_argument("run", help="run directory or checkpoint file")
    p.add_argument("--data", required=True)
    p.add_argument("--degrade", default="none", help="comma-separated specs, e.g. none,jpeg:65,blur:3,lr:112")
    p.add_argument("--degrade-at", default="source", help="source (the full decoded test image, the paper's "
                   "protocol; default) or crop (the model-size crop)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/eval)")
    p.add_argument("--split", default="val")
    p.add_argument("--save-predictions", action="store_true")
    p.add_argument("--batch-size", type=_positive, default=64)
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("features", help="cache a frozen backbone's features per split (UnivFD), then optionally "
                       "train its linear probe from the cache")
    p.add_argument("model_or_run", help="a recipe YAML (e.g. recipes/univfd.yaml) or a run directory / checkpoint")
    p.add_argument("--data", required=True, help="record set")
    p.add_argument("--out", default=None, help="cache folder (default: RECORDS/features/<key>)")
    p.add_argument("--split", default="all", help="train, val or all (default)")
    p.add_argument("--set", dest="overrides", **SET_ARGS)
    p.add_argument("--batch-size", type=_positive, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--probe", metavar="RUN_DIR", default=None,
                   help="then train the model's linear probe from the cache into this run directory")

    p = sub.add_parser("report", help="paper tables and figures from eval results")
    p.add_argument("results", nargs="+", help="results.json files (or folders holding one)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("protocol", help="run the paper's protocol: convert, train per generator, eval, report")
    p.add_argument("src", help="GenImage tree")
    p.add_argument("--out", required=True)
    # defaults (None here) come from --protocol FILE, else resnet50 / sdv14 / dali / the Task 2 specs
    p.add_argument("--protocol", default=None, help="protocol YAML, e.g. recipes/protocols/task1_task2.yaml")
    p.add_argument("--recipes", default=None, help="comma-separated recipe names or paths (default resnet50)")
    p.add_argument("--train-generators", default=None, help="comma-separated; 'all' for the 8x8 matrix (default sdv14)")
    p.add_argument("--format", dest="fmt", default=None, choices=["ffcv", "dali"], help="default dali")
    p.add_argument("--degrade", default=None, help="default none,lr:112,lr:64,jpeg:65,jpeg:30,blur:3,blur:5")
    p.add_argument("--degrade-at", default=None, help="source (default, the paper's) or crop")
    p.add_argument("--set", dest="overrides", **SET_ARGS)

    bench = sub.add_parser("bench", help="throughput benchmarks, each beside its plain baseline")
    parser.set_defaults(help_parser=parser)
    bench.set_defaults(help_parser=bench)
    bsub = bench.add_subparsers(dest="bench", metavar="WHAT", parser_class=_Parser)

    p = bsub.add_parser("loader", help="loader backends vs torchvision ImageFolder + PIL")
    p.add_argument("records", nargs="+", help="one or more record sets (e.g. original and lossless of one tree)")
    p.add_argument("--tree", default=None, help="the original tree for the baseline (default: the manifest's source)")
    p.add_argument("--backend", dest="backends", default="all", help="comma-separated backends, or all")
    p.add_argument("--batch-size", type=_positive, default=64)
    p.add_argument("--image-size", type=_positive, default=224)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--batches", type=_positive, default=20, help="batches timed per backend")
    p.add_argument("--split", default="train")
    _add_common_bench(p)

    p = bsub.add_parser("degrade", help="JPEG / blur / low-res kernels vs PIL and scipy")
    p.add_argument("--batch-size", type=_positive, default=64)
    p.add_argument("--image-size", type=_positive, default=224)
    p.add_argument("--ops", default="jpeg,blur,lowres")
    p.add_argument("--backends", default="auto")
    p.add_argument("--iters", type=_positive, default=5)
    _add_common_bench(p)

    p = bsub.add_parser("spectral", help="numba spectral features vs plain numpy")
    p.add_argument("--n", type=_positive, default=64, help="images per batch")
    p.add_argument("--size", type=_positive, default=256)
    p.add_argument("--iters", type=_positive, default=3)
    _add_common_bench(p)

    p = bsub.add_parser("train", help="training images/s with the loader vs synthetic batches")
    p.add_argument("recipe")
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=_positive, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--set", dest="overrides", **SET_ARGS)
    _add_common_bench(p)

    p = bsub.add_parser("eval", help="eval images/s with --degrade-at source vs crop")
    p.add_argument("run", help="run directory or checkpoint file")
    p.add_argument("--data", required=True)
    p.add_argument("--degrade", default="none,lr:112,lr:64,jpeg:65,jpeg:30,blur:3,blur:5")
    p.add_argument("--split", default="val")
    p.add_argument("--batch-size", type=_positive, default=64)
    p.add_argument("--backend", default="auto")
    _add_common_bench(p)

    p = bsub.add_parser("convert", help="convert images/s vs a plain single-process PIL loop")
    p.add_argument("src")
    p.add_argument("--format", dest="fmt", default="dali", choices=["ffcv", "dali"])
    p.add_argument("--store", default="original", help="a store, or several comma-separated (original,lossless)")
    p.add_argument("--max-side", type=_positive, default=None)
    p.add_argument("--workers", type=_positive, default=2)
    p.add_argument("--limit", type=int, default=0, help="images to convert (0 = all)")
    p.add_argument("--json", dest="json_path", metavar="FILE")

    return parser


def _entry_for(args: argparse.Namespace) -> str:
    if args.command == "bench":
        return f"bench {args.bench}" if args.bench else ""
    return args.command or ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = _entry_for(args)
    if not name:
        args.help_parser.print_help(sys.stderr)
        return 2
    kwargs = {k: v for k, v in vars(args).items() if k not in ("command", "bench", "help_parser")}
    module_name, func_name = ENTRY_POINTS[name].split(":")
    try:
        try:
            func = getattr(importlib.import_module(module_name), func_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not module_name.startswith(exc.name):
                raise  # a missing third-party dependency, not a missing command
            raise GenImageError(f"'{name}' is not built yet") from None
        code = func(**kwargs)
    except GenImageError as exc:
        print(f"genimage-fast {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genimage-fast {name}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
