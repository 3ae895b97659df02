"""Evaluation: a trained run scored per test generator, clean and degraded (the paper's Tasks 1 and 2).

Where the degradation acts (`degrade_at`, recorded in results.json's `protocol`):
- "source" (the default, the paper's protocol: §3.3 degrades "only the testing set images", and
  AIGCDetectBenchmark degrades the full decoded image before the detector's transform): one loader
  pass per spec, `build_loader(train=False, degrade=spec, eval_transform=<the run's
  data.eval_transform>)`: each test image is decoded at full size, degraded (`lr:S` squashes the whole
  image to S×S, `jpeg:Q` a libjpeg 4:2:0 round trip, `blur:SIGMA` scipy's uint8 gaussian_filter, σ in
  source pixels), then put through the detector's own eval transform. The batches are exactly what
  the model sees; every spec decodes the split again.
- "crop" (explicit opt-in, the engine's behaviour before issue #12): one loader pass with the run's
  eval transform; each batch of model-size crops is decoded once and degraded under every spec on the
  device. `lr:S` resizes the crop to S×S and back (identity when S >= image_size); JPEG's 8×8 grid
  is aligned to the crop and σ is in crop pixels, so these cells are not the paper's.

The checkpoint: a run directory is scored with `checkpoints/last.pt`, or with `best.pt` when the run
picked it on a selection set carved from train (`data.selection_fraction` > 0); `protocol.selection`
says which ("train-holdout", "val" = chosen on the split reported here: optimistic, "last" = no
selection). GenImage has no test split.

Outputs (DESIGN §4.5): `results.json` (fractions 0–1, with `protocol`), `results.md` (percent, the
paper's layout, naming the protocol) and, on request, `predictions.csv`
(`path,generator,label,spec,score,pred`, score = P(fake)).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genimage_fast.atomic import atomic_write_text
from genimage_fast.config import RecipeConfig, config_from_dict
from genimage_fast.devices import resolve_device
from genimage_fast.engine.metrics import THRESHOLD, accuracy_by_generator
from genimage_fast.engine.precision import build_precision
from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES, GENERATORS, generator_name

CHECKPOINT_NAMES = ("last.pt", "best.pt")  # a run directory is scored with its final model first
DEGRADE_AT = ("source", "crop")  # where a spec acts: the full decoded test image (paper) | the model's crop
DEFAULT_EVAL_TRANSFORM = "resize_centre"  # what build_loader(eval_transform=None) applies
MISSING = "–"  # an empty table cell
PREDICTION_COLUMNS = ("path", "generator", "label", "spec", "score", "pred")


# ----------------------------------------------------------------------------------------------
# Loading a run


@dataclass
class LoadedRun:
    model: torch.nn.Module
    config: RecipeConfig
    checkpoint: Path
    output_kind: str  # the model spec's output: logits | logit | log_probs
    selection: str = "last"  # how the checkpoint was chosen: train-holdout | val | last | unknown


def resolve_checkpoint(run: str | Path) -> Path:
    """A run directory -> its checkpoints/last.pt (else best.pt); a file is taken as given."""
    path = Path(run)
    if path.is_file():
        return path
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            for candidate in (path / "checkpoints" / name, path / name):
                if candidate.is_file():
                    return candidate
        looked = "|".join(CHECKPOINT_NAMES)
        raise GenImageError(f"no checkpoint in run directory {path} (looked for checkpoints/{looked})")
    raise GenImageError(f"run or checkpoint not found: {path}")


def _read_checkpoint(checkpoint: Path) -> tuple[dict[str, Any], RecipeConfig]:
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt / foreign file
        raise GenImageError(f"cannot read checkpoint {checkpoint}: {str(exc).splitlines()[0]}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise GenImageError(f"checkpoint {checkpoint} has no 'model' weights")
    if not isinstance(state.get("config"), dict):
        raise GenImageError(f"checkpoint {checkpoint} has no 'config': cannot rebuild its model")
    return state, config_from_dict(state["config"])


def checkpoint_selection(checkpoint: Path, config: RecipeConfig) -> str:
    """How a checkpoint was chosen: best.pt on the train holdout or on val; last.pt: not at all."""
    if checkpoint.name == "best.pt":
        return "train-holdout" if config.data.selection_fraction > 0 else "val"
    return "last" if checkpoint.name == "last.pt" else "unknown"


def load_run(run: str | Path, device: torch.device) -> LoadedRun:
    """Rebuild the run's model from its checkpoint's config and weights (weights_only=True).

    A run directory whose training held out a selection set is scored with its best.pt (picked on
    that set, never on val); otherwise with last.pt, as selecting on val would flatter val's numbers.
    """
    from genimage_fast.models import create_model, get_model_spec

    checkpoint = resolve_checkpoint(run)
    state, config = _read_checkpoint(checkpoint)
    best = checkpoint.with_name("best.pt")
    if Path(run).is_dir() and checkpoint.name == "last.pt" and config.data.selection_fraction > 0 and best.is_file():
        checkpoint = best
        state, config = _read_checkpoint(best)
    model = create_model(config.model.name, **config.model.kwargs)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise GenImageError(f"checkpoint {checkpoint} does not fit model {config.model.name!r}: "
                            f"{str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    if device.type == "cuda" and config.train.channels_last:
        model.to(memory_format=torch.channels_last)
    return LoadedRun(model, config, checkpoint, get_model_spec(config.model.name).output,
                     checkpoint_selection(checkpoint, config))


# ----------------------------------------------------------------------------------------------
# Degradations


def parse_specs(specs: str | Iterable[str]) -> list[str]:
    """'none,jpeg:30' or a list -> validated, de-duplicated specs; an unknown spec is a GenImageError."""
    from genimage_fast.degrade import parse_spec

    items = specs.split(",") if isinstance(specs, str) else list(specs)
    out: list[str] = []
    for spec in (s.strip() for s in items):
        if not spec or spec in out:
            continue
        try:
            parse_spec(spec)
        except ValueError as exc:
            raise GenImageError(f"bad degradation spec {spec!r}: {exc}") from None
        out.append(spec)
    if not out:
        raise GenImageError("no degradation spec given (use 'none' for clean images)")
    return out


def degrade_batch(images: torch.Tensor, spec: str, image_size: int, backend: str = "auto") -> torch.Tensor:
    """--degrade-at crop: uint8 [N,3,H,W] crops -> degraded uint8 at image_size (lr:S comes back up).

    lr:S with S >= image_size is the identity on a crop (a bottleneck wider than the crop removes
    nothing). This is not the paper's degradation, which acts on the full image: see score_records.
    """
    from genimage_fast import degrade

    name, value = degrade.parse_spec(spec)
    if spec == "none" or (name == "lr" and value >= image_size):
        return images
    out = degrade.apply(images, spec, backend=backend)
    if out.shape[-2:] != (image_size, image_size):
        out = torch.nn.functional.interpolate(out.float(), size=(image_size, image_size), mode="bilinear",
                                              align_corners=False, antialias=True)
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out


# ----------------------------------------------------------------------------------------------
# Inference


@dataclass
class Predictions:
    """Scores of every image under every spec; rows follow the loader's order."""

    indices: np.ndarray  # positions in the split
    labels: np.ndarray
    generators: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # spec -> P(fake) per row


@torch.inference_mode()
def predict(model: torch.nn.Module, output_kind: str, loader: Iterable[Any], specs: Sequence[str],
            image_size: int, device: torch.device, precision: str = "fp32", degrade_backend: str = "auto",
            channels_last: bool = False, degrade_crops: bool = True) -> Predictions:
    """Score every batch of `loader` under each spec; each batch is loaded and decoded once.

    degrade_crops: degrade each batch under every spec here (--degrade-at crop); False: the loader
    already applied the one spec in `specs` to the source images, so the batches go in as they are.
    """
    from genimage_fast.models import fake_probability

    if not degrade_crops and len(specs) != 1:
        raise ValueError("a source-degraded loader carries exactly one spec")
    autocast = build_precision(precision, device).autocast  # the same forward context as training's validation
    indices, labels, generators = [], [], []
    scores: dict[str, list[torch.Tensor]] = {spec: [] for spec in specs}
    for batch in loader:
        images = batch.images.to(device, non_blocking=True)
        for spec in specs:
            x = degrade_batch(images, spec, image_size, degrade_backend) if degrade_crops else images
            x = x.float().div_(255.0)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                output = model(x)
            scores[spec].append(fake_probability(output.float(), output_kind).float().cpu())
        indices.append(batch.indices.cpu())
        labels.append(batch.labels.cpu())
        generators.append(batch.generators.cpu())

    def cat(parts: list[torch.Tensor], dtype: torch.dtype) -> np.ndarray:
        return (torch.cat(parts) if parts else torch.zeros(0)).to(dtype).numpy()

    return Predictions(cat(indices, torch.int64), cat(labels, torch.int64), cat(generators, torch.int64),
                       {spec: cat(parts, torch.float32) for spec, parts in scores.items()})


def merge_passes(passes: Sequence[Predictions]) -> Predictions:
    """One Predictions from per-spec passes over the same split (source mode): same rows, more specs."""
    first = passes[0]
    merged = Predictions(first.indices, first.labels, first.generators, dict(first.scores))
    for other in passes[1:]:
        if not np.array_equal(other.indices, first.indices):  # the eval order is sequential by contract
            raise RuntimeError("eval passes visited the split in different orders")
        merged.scores.update(other.scores)
    return merged


def check_degrade_at(value: str) -> str:
    if value not in DEGRADE_AT:
        raise GenImageError(f"unknown --degrade-at {value!r}: use 'source' (degrade the full test image, the "
                            f"paper's protocol) or 'crop' (degrade the model-size crop)")
    return value


def eval_loader(loaded: LoadedRun | RecipeConfig, records: Any, split: str, batch_size: int, backend: str,
                device: torch.device, degrade: str | None = None, pipeline_on: str = "auto") -> Any:
    """The run's eval loader: its eval transform and decode settings, optionally degrading at source.

    The run's opt-in reduced-scale JPEG decode (data.fast_jpeg_decode) exists only on the box path
    (resize_centre, no source degradation); elsewhere every image is decoded at full size, and the
    loader's `decoder` says which one ran.
    """
    from genimage_fast.loaders import build_loader

    cfg = loaded if isinstance(loaded, RecipeConfig) else loaded.config  # a run, or a recipe (feature cache)
    transform = cfg.data.eval_transform or DEFAULT_EVAL_TRANSFORM
    fast = cfg.data.fast_jpeg_decode and degrade is None and transform == DEFAULT_EVAL_TRANSFORM
    return build_loader(records, backend=backend if backend != "auto" else cfg.data.backend, batch_size=batch_size,
                        train=False, image_size=cfg.data.image_size, device=device.type,
                        num_workers=cfg.data.num_workers, seed=cfg.train.seed, split=split,
                        resize_size=cfg.data.resize_size, drop_last=False,
                        eval_transform=transform, degrade=degrade, fast_jpeg_decode=fast, pipeline_on=pipeline_on)


def eval_protocol(loaded: LoadedRun, loaders: dict[str, Any], records: Any, degrade_at: str) -> dict[str, Any]:
    """results.json's `protocol` (DESIGN §4.5), plus what the records' manifest changed in the data.

    loaders: spec -> the loader that produced its scores (one shared loader at crop)."""
    cfg, manifest = loaded.config, records.manifest
    decoders = {spec: loader.decoder for spec, loader in loaders.items()}
    # where each column's degradation + eval transform ran: "host" (workers) or "device" (device_eval.py)
    places = [getattr(loader, "pipeline_on", "host") for loader in loaders.values()]
    return {
        "degrade_at": degrade_at,
        "eval_transform": cfg.data.eval_transform or DEFAULT_EVAL_TRANSFORM,
        # one decoder for every spec, else "mixed" with the per-spec names beside it
        "decoder": one_or_mixed(decoders.values()),
        **({"decoder_by_spec": decoders} if len(set(decoders.values())) > 1 else {}),
        "backend": one_or_mixed(loader.name for loader in loaders.values()),
        "pipeline_on": one_or_mixed(places),
        "selection": loaded.selection,
        "checkpoint": loaded.checkpoint.name,
        "store": manifest.get("store", "original"),
        "max_side": manifest.get("max_side"),
        "records_protocol": records_protocol_name(manifest.get("protocol")),
    }


def one_or_mixed(values: Iterable[str]) -> str:
    """The one value every spec's loader shares (one decoder, backend, place), else "mixed"."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else "mixed"


def records_protocol_name(entry: Any) -> str | None:
    """The manifest's `protocol` (convert --protocol: a dict with its settings and counts) -> its name."""
    if isinstance(entry, dict):
        return str(entry.get("name", "custom")) + ("-balanced" if entry.get("class_balanced") else "")
    return str(entry) if entry else None


def score_records(loaded: LoadedRun, records: Any, specs: Sequence[str], split: str = "val",
                  degrade_at: str = "source", batch_size: int = 64, backend: str = "auto",
                  device: torch.device | None = None,
                  pipeline_on: str = "auto") -> tuple[Predictions, dict[str, Any]]:
    """Score `loaded` on RECORDS' split under each spec: one pass per spec at source, one pass at crop.

    Returns the predictions (rows in split order) and the protocol that produced them.
    """
    check_degrade_at(degrade_at)
    dev = device if device is not None else torch.device("cpu")
    cfg = loaded.config
    channels_last = dev.type == "cuda" and cfg.train.channels_last
    run = dict(image_size=cfg.data.image_size, device=dev, precision=cfg.train.precision, channels_last=channels_last)
    if degrade_at == "crop":
        loader = eval_loader(loaded, records, split, batch_size, backend, dev, pipeline_on=pipeline_on)
        predictions = predict(loaded.model, loaded.output_kind, loader, specs, **run)
        loaders = dict.fromkeys(specs, loader)
    else:
        passes, loaders = [], {}
        for spec in specs:
            loaders[spec] = eval_loader(loaded, records, split, batch_size, backend, dev,
                                        None if spec == "none" else spec, pipeline_on=pipeline_on)
            passes.append(predict(loaded.model, loaded.output_kind, loaders[spec], [spec], degrade_crops=False,
                                  **run))
        predictions = merge_passes(passes)
    return predictions, eval_protocol(loaded, loaders, records, degrade_at)


# ----------------------------------------------------------------------------------------------
# Metrics


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the precision-recall curve as a step sum, sklearn's definition; None without both classes.

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds, highest first (ties share a step).
    """
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        return None
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # the last position of each run of equal scores closes one threshold
    ends = np.r_[np.nonzero(np.diff(sorted_scores))[0], len(sorted_scores) - 1]
    true_pos = np.cumsum(sorted_labels)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def average_precision_by_generator(scores: np.ndarray, labels: np.ndarray, generators: np.ndarray,
                                   names: dict[int, str] | None = None) -> dict[str, float | None]:
    """{generator_name: AP over that subset's reals and fakes, "mean": mean of the defined ones}."""
    result: dict[str, float | None] = {}
    for gen in sorted(int(g) for g in np.unique(generators)):
        mask = generators == gen
        result[generator_name(gen, names)] = average_precision(labels[mask], scores[mask])
    if result:
        result["mean"] = _mean(result.values())
    return result


def summarize(predictions: Predictions, names: dict[int, str] | None = None) -> dict[str, Any]:
    """Accuracy (all / real / fake) and AP per spec and generator, plus per-generator counts; `names`
    names other benchmarks' generators (RecordSet.generator_names)."""
    labels, generators = predictions.labels, predictions.generators
    real, fake = labels == 0, labels == 1
    out: dict[str, Any] = {"accuracy": {}, "real_accuracy": {}, "fake_accuracy": {}, "average_precision": {}}
    for spec, scores in predictions.scores.items():
        out["accuracy"][spec] = accuracy_by_generator(scores, labels, generators, names=names)
        out["real_accuracy"][spec] = accuracy_by_generator(scores[real], labels[real], generators[real], names=names)
        out["fake_accuracy"][spec] = accuracy_by_generator(scores[fake], labels[fake], generators[fake], names=names)
        out["average_precision"][spec] = average_precision_by_generator(scores, labels, generators, names)
    out["counts"] = {
        generator_name(gen, names): {"real": int((real & (generators == gen)).sum()),
                              "fake": int((fake & (generators == gen)).sum())}
        for gen in sorted(int(g) for g in np.unique(generators))
    }
    return out


def training_subset_accuracy(accuracy: dict[str, float], train_generators: Sequence[str]) -> float | None:
    """Task 2 (Table 5) score: accuracy on the test subsets of the generators the run was trained on
    (the paper trains and tests on SD V1.4); a run trained on all generators uses the mean."""
    if not train_generators:
        return accuracy.get("mean")
    return _mean(accuracy.get(name) for name in train_generators)


# ----------------------------------------------------------------------------------------------
# Writing results

# Our method keys (recipe / model registry names) -> the paper's row titles, in the paper's row order.
METHOD_TITLES: dict[str, str] = {
    "resnet50": "ResNet-50",
    "deit_s": "DeiT-S",
    "swin_t": "Swin-T",
    "cnnspot": "CNNSpot",
    "spec": "Spec",
    "f3net": "F3Net",
    "gramnet": "GramNet",
}
SPEC_TITLES: dict[str, str] = {"none": "None"}
SPEC_TEMPLATES: dict[str, str] = {"lr": "LR ({})", "jpeg": "JPEG (q={})", "blur": "Blur (σ={})"}


def method_title(method: str) -> str:
    """The paper's row title for a method key ('resnet50' -> 'ResNet-50'); unknown keys unchanged."""
    return METHOD_TITLES.get(method, method)


def spec_title(spec: str) -> str:
    """The paper's column header for a degradation spec ('jpeg:30' -> 'JPEG (q=30)')."""
    if spec in SPEC_TITLES:
        return SPEC_TITLES[spec]
    name, _, value = spec.partition(":")
    return SPEC_TEMPLATES[name].format(value) if name in SPEC_TEMPLATES else spec



def format_percent(value: float | None) -> str:
    """0.9876 -> '98.8'; None -> '–' (a missing cell)."""
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table; the first column is left-aligned, the numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def generator_columns(by_generator: dict[str, Any]) -> list[str]:
    """The 8 generators in paper order, plus 'unknown' when the records had unlabelled subsets; with
    other benchmarks' generators, the GenImage ones present, then the others by name."""
    other = sorted(k for k in by_generator if k not in GENERATOR_NAMES and k not in ("unknown", "mean"))
    own = [g for g in GENERATOR_NAMES if g in by_generator or not other]
    return own + other + (["unknown"] if "unknown" in by_generator else [])


def benchmark_name(generators: Sequence[str], data: str | Path) -> str:
    """'genimage' when every tested generator is one of GenImage's, else the records folder's name."""
    if all(g in GENERATOR_NAMES or g == "unknown" for g in generators):
        return "genimage"
    return Path(data).resolve().name


def generator_header(first: str, columns: Sequence[str], avg: str = "Avg Acc.(%)") -> list[str]:
    titles = {g.name: g.title for g in GENERATORS}
    return [first, *(titles.get(c, c) for c in columns), avg]


def _spec_rows(table: dict[str, dict[str, float | None]], columns: Sequence[str]) -> list[list[str]]:
    return [[spec_title(spec), *(format_percent(by_gen.get(c)) for c in columns), format_percent(by_gen.get("mean"))]
            for spec, by_gen in table.items()]


SELECTION_TEXT = {"train-holdout": "best.pt, chosen on a selection set held out of train",
                  "val": "best.pt, chosen on val (the split reported: optimistic)",
                  "last": "last.pt (no checkpoint selection)", "unknown": "a checkpoint file given directly"}


def describe_protocol(protocol: dict[str, Any] | None) -> str:
    """One line naming what produced a results table (results.md, report)."""
    if not protocol:
        return "not recorded (results from before protocols were recorded: degraded on the crop)"
    where = {"source": "degradations on the full decoded test image (--degrade-at source, as the paper)",
             "crop": "degradations on the model-size crop (--degrade-at crop, not the paper's protocol)"}
    store = protocol.get("store") or "original"
    if protocol.get("max_side"):
        store += f", max side {protocol['max_side']}"
    if protocol.get("records_protocol"):
        store += f", {protocol['records_protocol']} protocol"
    selection = protocol.get("selection", "unknown")
    return (f"{where.get(protocol.get('degrade_at', ''), protocol.get('degrade_at'))}; eval transform "
            f"`{protocol.get('eval_transform')}`; decoder `{protocol.get('decoder')}`, backend "
            f"`{protocol.get('backend')}`{_placed(protocol)}; records store `{store}`; "
            f"model: {SELECTION_TEXT.get(selection, selection)}")


def _placed(protocol: dict[str, Any]) -> str:
    """Where the degradation + eval transform ran, when it is the device (the host is the default)."""
    place = protocol.get("pipeline_on")
    if place == "mixed":
        return " (degradation and eval transform on the host for some columns, the device for others)"
    return f" (degradation and eval transform on the {place})" if place and place != "host" else ""


def results_markdown(results: dict[str, Any]) -> str:
    """results.json -> results.md: percent tables in the paper's layout (Tables 3 and 5)."""
    method = method_title(results.get("recipe") or results.get("model") or "model")
    columns = generator_columns(results["accuracy"].get("none") or next(iter(results["accuracy"].values())))
    trained = ", ".join(results.get("train_generators") or []) or "all generators"
    parts = [
        f"# Evaluation of {method}\n",
        f"- checkpoint: `{results['checkpoint']}`\n"
        f"- data: `{results['data']}` (split `{results.get('split', 'val')}`)\n"
        f"- model: `{results.get('model', '?')}`, trained on: {trained}, precision: {results.get('precision', '?')}\n"
        f"- images per spec: {sum(c['real'] + c['fake'] for c in results.get('counts', {}).values())}\n",
        f"- protocol: {describe_protocol(results.get('protocol'))}\n",
    ]
    sections = (("Accuracy (%) per testing subset (Table 3 layout)", "accuracy"),
                ("Real-image accuracy (%)", "real_accuracy"),
                ("Fake-image accuracy (%)", "fake_accuracy"),
                ("Average precision (%)", "average_precision"))
    for title, key in sections:
        avg = "Avg AP(%)" if key == "average_precision" else "Avg Acc.(%)"
        parts.append(f"\n## {title}\n\n" + markdown_table(generator_header("Degradation", columns, avg),
                                                             _spec_rows(results[key], columns)))
    degraded = [spec for spec in results["accuracy"] if spec != "none"]
    if degraded:
        train_gens = results.get("train_generators") or []
        values = [training_subset_accuracy(results["accuracy"][s], train_gens) for s in degraded]
        titles = {g.name: g.title for g in GENERATORS}
        subset = ", ".join(titles.get(g, g) for g in train_gens) if train_gens else "all subsets, mean"
        parts.append(f"\n## Degraded images (Table 5 layout): accuracy (%) on the training subset ({subset})\n\n"
                     + markdown_table(["Method", *(spec_title(s) for s in degraded), "Avg Acc(%)"],
                                      [[method, *(format_percent(v) for v in values), format_percent(_mean(values))]]))
    return "".join(parts)



def predictions_csv(predictions: Predictions, paths: Sequence[str], extra: dict[int, str] | None = None) -> str:
    """One row per image and spec: path,generator,label,spec,score,pred (score = P(fake))."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PREDICTION_COLUMNS)
    names = [generator_name(int(g), extra) for g in predictions.generators]
    for spec, scores in predictions.scores.items():
        preds = (scores >= THRESHOLD).astype(np.int64)
        for row, index in enumerate(predictions.indices):
            writer.writerow((paths[int(index)], names[row], int(predictions.labels[row]), spec,
                             f"{float(scores[row]):.6g}", int(preds[row])))
    return buffer.getvalue()


def default_out(run: str | Path) -> Path:
    """RUN/eval for a run directory; for RUN/checkpoints/x.pt also RUN/eval."""
    path = Path(run)
    if path.is_file():
        path = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return path / "eval"


# ----------------------------------------------------------------------------------------------
# Entry points


def open_inputs(run: str | Path, data: str | Path, split: str, device: str) -> tuple[torch.device, LoadedRun, Any]:
    """(device, the run's model, the records) for scoring `split`; a missing split is one line."""
    from genimage_fast.records import open_records

    dev = resolve_device(device)
    loaded = load_run(run, dev)
    records = open_records(data)
    if split not in records.splits:
        raise GenImageError(f"records {data} have no {split!r} split (have: {', '.join(records.splits) or 'none'})")
    return dev, loaded, records


def evaluate(run: str | Path, data: str | Path, degrade: str | Sequence[str] = ("none",), out: str | Path | None = None,
             split: str = "val", save_predictions: bool = False, batch_size: int = 64, backend: str = "auto",
             device: str = "auto", degrade_at: str = "source") -> dict[str, Any]:
    """Score a run (directory or checkpoint) on RECORDS' split under each degradation spec.

    degrade_at: "source" (default: each spec on the full decoded test image, then the run's eval
    transform) or "crop" (each spec on the model-size crop). Returns the results dict (DESIGN §4.5)
    and, when `out` is given, writes results.json / results.md (and predictions.csv) there.
    """
    check_degrade_at(degrade_at)
    resolve_checkpoint(run)  # a missing run is reported before anything else
    specs = parse_specs(degrade)
    dev, loaded, records = open_inputs(run, data, split, device)
    cfg = loaded.config
    start = time.perf_counter()
    predictions, protocol = score_records(loaded, records, specs, split=split, degrade_at=degrade_at,
                                          batch_size=batch_size, backend=backend, device=dev)
    seconds = time.perf_counter() - start
    if len(predictions.labels) == 0:
        raise GenImageError(f"the {split!r} split of {data} is empty")
    results: dict[str, Any] = {
        "checkpoint": str(loaded.checkpoint),
        "data": str(data),
        **summarize(predictions, records.generator_names),
        "protocol": protocol,
        "split": split,
        "recipe": cfg.recipe,
        "model": cfg.model.name,
        "train_generators": list(cfg.data.generators),
        "degrade": specs,
        "precision": cfg.train.precision,
        "image_size": cfg.data.image_size,
        "images": int(len(predictions.labels)),
        "wall_seconds": round(seconds, 3),
        "images_per_second": round(len(predictions.labels) * len(specs) / max(seconds, 1e-9), 1),
    }
    results["benchmark"] = benchmark_name(list(results["counts"]), data)  # cross-benchmark tables key on it
    if out is not None:
        out = Path(out)
        atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
        atomic_write_text(out / "results.md", results_markdown(results))
        if save_predictions:
            atomic_write_text(out / "predictions.csv", predictions_csv(predictions, records.split(split).meta["path"],
                                                                       records.generator_names))
    return results


def eval_command(run: str, data: str, degrade: str = "none", out: str | None = None, split: str = "val",
                 save_predictions: bool = False, batch_size: int = 64, backend: str = "auto",
                 device: str = "auto", degrade_at: str = "source") -> int:
    """`genimage-fast eval`: writes results.json / results.md (default RUN/eval) and prints the tables."""
    out_dir = Path(out) if out else default_out(run)
    results = evaluate(run, data, degrade=degrade, out=out_dir, split=split, save_predictions=save_predictions,
                       batch_size=batch_size, backend=backend, device=device, degrade_at=degrade_at)
    sys.stdout.write(results_markdown(results))
    sys.stdout.write(f"\nwrote {out_dir / 'results.json'} and results.md"
                     f"{' and predictions.csv' if save_predictions else ''} "
                     f"({results['images']} images x {len(results['degrade'])} specs, degraded at "
                     f"{degrade_at}, {results['images_per_second']:.0f} img/s)\n")
    return 0
