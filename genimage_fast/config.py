"""Typed recipe configs: YAML -> dataclasses, unknown keys rejected by name, `--set a.b=c` overrides.

A recipe has the sections model, data, optim, schedule, loss, aug and train (DESIGN §4.5). Every run
writes its resolved config (`config.yaml`) so it can be rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genimage_fast.errors import GenImageError
from genimage_fast.registry import close_matches


@dataclass
class ModelConfig:
    name: str = "resnet50"
    pretrained: str = ""  # a local checkpoint file; nothing is ever downloaded
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra create_model overrides


@dataclass
class DataConfig:
    image_size: int = 224
    backend: str = "auto"  # loader registry name, or auto
    num_workers: int = 2
    train_transform: str = "rrc"  # rrc (RandomResizedCrop + flip) | resize_crop (short side, crop, flip) | an
    # original's full-image pipeline (loaders/train_transforms.py): cnnspot | autogan | f3net | gramnet
    transform_options: dict[str, Any] = field(default_factory=dict)  # that transform's factory options (TRAIN-FIDELITY)
    resize_size: int = 0  # short side for resize_crop / eval (0: image_size / 0.875)
    generators: list[str] = field(default_factory=list)  # train on these generators only (Task 1); [] = all
    val_generators: list[str] = field(default_factory=list)  # [] = all
    selection_fraction: float = 0.0  # hold out this share of train (per label x generator) to pick best.pt; 0 = val
    eval_transform: str = "resize_centre"  # the detector's own eval transform (EVAL_TRANSFORMS name)
    fast_jpeg_decode: bool = False  # opt-in reduced-scale DCT JPEG decode (reals only: a shortcut risk); recorded


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.05
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    fused: bool = True  # use torch's fused kernels where the device has them
    dampening: float = 0.0  # SGD dampening (AutoGAN: 0.9)
    decay_all: bool = False  # weight decay on every parameter, biases and norms too (AutoGAN, GramNet)
    no_weight_decay: list[str] = field(default_factory=list)  # name keywords kept out of weight decay
    lr_scale: str = "none"  # none | lr (DeiT: lr x global batch / 512) | all (Swin: lr, warmup_lr, min_lr)


@dataclass
class ScheduleConfig:
    name: str = "cosine"  # cosine | step | constant
    warmup_epochs: float = 0.0
    warmup_lr: float = 1e-6  # lr at the start of warm-up
    min_lr: float = 0.0  # cosine floor
    decay_epochs: float = 30.0  # step: decay every this many epochs
    decay_rate: float = 0.1  # step: multiply by this at each decay
    per_epoch: bool = False  # lr changes once per epoch (timm's t_in_epochs), not every step
    warmup_prefix: bool = True  # cosine starts after warm-up (Swin); False: over all epochs (timm, DeiT)
    cooldown_epochs: int = 0  # last epochs of train.epochs held at min_lr (timm --cooldown-epochs)
    lag: int = 0  # lr of epoch/step t is the schedule's value at t - lag (DeiT/Swin step after the unit)
    plateau_patience: int = 5  # plateau: epochs without improvement before lr / 10 (CNNDetection)
    plateau_delta: float = 0.001  # plateau: improvement needed, then plateau_delta_after after a drop
    plateau_delta_after: float = 0.002
    plateau_factor: float = 0.1
    plateau_min_lr: float = 1e-6  # plateau: stop when the dropped lr falls below this


@dataclass
class LossConfig:
    name: str = "ce"  # ce | bce | nll | jsd_ce
    label_smoothing: float = 0.0
    jsd_splits: int = 3  # jsd_ce: clean + (splits-1) AugMix views
    jsd_alpha: float = 12.0  # jsd_ce: weight of the consistency term


@dataclass
class AugConfig:
    hflip: float = 0.5
    random_erase: float = 0.0  # probability
    randaugment: str = ""  # timm-style policy string, e.g. rand-m9-mstd0.5-inc1; '' = off
    augmix: bool = False  # AugMix views for jsd_ce
    blur_prob: float = 0.0  # opt-in device blur AFTER the crop, sigma ~ U(0, blur_sigma_max) (the original's
    # before-the-crop order is data.train_transform: cnnspot)
    blur_sigma_max: float = 3.0
    jpeg_prob: float = 0.0  # opt-in device JPEG after the crop, quality uniform in jpeg_quality (as blur_prob)
    jpeg_quality: list[int] = field(default_factory=lambda: [30, 100])
    mixup: float = 0.0  # Mixup alpha (timm Mixup, batch mode, on the device); 0 = off
    cutmix: float = 0.0  # CutMix alpha; 0 = off
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5  # with both on: probability of CutMix for a batch
    repeated_aug: int = 1  # DeiT RASampler repeats per image (1 = off)
    ema_decay: float = 0.0  # model EMA decay per step (DeiT 0.99996); 0 = off


@dataclass
class TrainConfig:
    epochs: int = 1
    max_steps: int = 0  # stop after this many optimizer steps; 0 = no limit
    batch_size: int = 64
    seed: int = 0
    precision: str = "bf16"  # fp32 | bf16 | fp16
    log_every: int = 10
    grad_accum: int = 1
    channels_last: bool = True
    compile: bool = False
    device: str = "auto"  # auto | cpu | cuda
    val_every: int = 1  # validate every this many epochs (0 = only at the end)
    clip_grad: float = 0.0
    val_batch_size: int = 0  # 0: same as batch_size
    global_batch_size: int = 0  # 0: batch_size x world x grad_accum; else grad_accum is derived from it


@dataclass
class RecipeConfig:
    recipe: str = ""  # the recipe's name (file stem)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


CHOICES: dict[str, tuple[str, ...]] = {
    "train.precision": ("fp32", "bf16", "fp16"),
    "train.device": ("auto", "cpu", "cuda"),
    "optim.name": ("sgd", "adam", "adamw"),
    "schedule.name": ("cosine", "step", "constant", "plateau"),
    "optim.lr_scale": ("none", "lr", "all"),
    "loss.name": ("ce", "bce", "nll", "jsd_ce"),
}


# -- value rules (declarative: one line per key; a key's owner adds its rule beside the key) ----------
# A rule returns None when the (already type-checked) value is fine, else what it must be. Keys
# without a rule take any value of their type. tests/test_config_validation.py checks every key here
# exists and every rule rejects a bad value with one line naming the key.

Rule = Callable[[Any], "str | None"]


def at_least(low: float) -> Rule:
    return lambda v: None if v >= low else f"must be >= {low}"


def above(low: float) -> Rule:
    return lambda v: None if v > low else f"must be > {low}"


def between(low: float, high: float, high_open: bool = False) -> Rule:
    """low <= v <= high (or < high)."""
    def rule(v: Any) -> str | None:
        ok = low <= v < high if high_open else low <= v <= high
        return None if ok else f"must be in [{low}, {high}{')' if high_open else ']'}"
    return rule


PROBABILITY = between(0.0, 1.0)


def each(rule: Rule, length: int | None = None) -> Rule:
    """A rule for every item of a list (and its length, when given)."""
    def check(v: Any) -> str | None:
        if length is not None and len(v) != length:
            return f"must have {length} items"
        problems = [p for p in map(rule, v) if p]
        return f"every item {problems[0]}" if problems else None
    return check


def quality_range(v: list[int]) -> str | None:
    if len(v) != 2 or not 1 <= v[0] <= v[1] <= 100:
        return "must be [low, high] with 1 <= low <= high <= 100"
    return None


def eval_transform_name(v: str) -> str | None:
    from genimage_fast.loaders.pipelines import EVAL_TRANSFORMS, load_transforms

    load_transforms()
    if v in EVAL_TRANSFORMS:
        return None
    names = EVAL_TRANSFORMS.names()
    return f"must be an eval transform{close_matches(v, names)} ({', '.join(names)})"


def train_transform_name(v: str) -> str | None:
    from genimage_fast.loaders.base import BOX_TRANSFORMS
    from genimage_fast.loaders.pipelines import TRAIN_TRANSFORMS, load_transforms

    load_transforms()
    names = [*BOX_TRANSFORMS, *TRAIN_TRANSFORMS.names()]
    return None if v in names else f"must be a train transform{close_matches(v, names)} ({', '.join(names)})"


def generator_names(v: list[str]) -> str | None:
    from genimage_fast.generators import parse_generators

    try:
        parse_generators(v)
    except GenImageError as exc:
        return str(exc)
    return None


RULES: dict[str, Rule] = {
    "data.image_size": at_least(8),
    "data.num_workers": at_least(0),
    "data.resize_size": at_least(0),
    "data.generators": generator_names,
    "data.val_generators": generator_names,
    "data.selection_fraction": between(0.0, 1.0, high_open=True),
    "data.eval_transform": eval_transform_name,
    "data.train_transform": train_transform_name,
    "optim.lr": at_least(0.0),
    "optim.weight_decay": at_least(0.0),
    "optim.momentum": PROBABILITY,
    "optim.betas": each(between(0.0, 1.0, high_open=True), length=2),
    "optim.eps": above(0.0),
    "optim.dampening": PROBABILITY,
    "schedule.warmup_epochs": at_least(0.0),
    "schedule.warmup_lr": at_least(0.0),
    "schedule.min_lr": at_least(0.0),
    "schedule.decay_epochs": above(0.0),
    "schedule.decay_rate": above(0.0),
    "schedule.cooldown_epochs": at_least(0),
    "schedule.lag": at_least(0),
    "schedule.plateau_patience": at_least(0),
    "schedule.plateau_factor": between(0.0, 1.0),
    "schedule.plateau_delta": at_least(0.0),
    "schedule.plateau_delta_after": at_least(0.0),
    "schedule.plateau_min_lr": at_least(0.0),
    "loss.label_smoothing": between(0.0, 1.0, high_open=True),
    "loss.jsd_splits": at_least(1),
    "loss.jsd_alpha": at_least(0.0),
    "aug.hflip": PROBABILITY,
    "aug.random_erase": PROBABILITY,
    "aug.blur_prob": PROBABILITY,
    "aug.blur_sigma_max": at_least(0.0),
    "aug.jpeg_prob": PROBABILITY,
    "aug.jpeg_quality": quality_range,
    "aug.mixup": at_least(0.0),
    "aug.cutmix": at_least(0.0),
    "aug.mixup_prob": PROBABILITY,
    "aug.mixup_switch_prob": PROBABILITY,
    "aug.repeated_aug": at_least(1),
    "aug.ema_decay": between(0.0, 1.0, high_open=True),
    "train.seed": at_least(0),  # numpy's SeedSequence (per-rank streams, epoch plans) takes no negatives
    "train.epochs": at_least(0),
    "train.max_steps": at_least(0),
    "train.batch_size": at_least(1),
    "train.log_every": at_least(1),
    "train.grad_accum": at_least(1),
    "train.val_every": at_least(0),
    "train.clip_grad": at_least(0.0),
    "train.val_batch_size": at_least(0),
    "train.global_batch_size": at_least(0),
}


def _generator_names(v: list[str]) -> list[str]:
    from genimage_fast.generators import generator_names as names  # (this module's generator_names is a rule)

    return names(v)


# Keys whose valid values are normalised to one spelling after their rule passed.
NORMALIZE: dict[str, Callable[[Any], Any]] = {
    "data.generators": _generator_names,
    "data.val_generators": _generator_names,
}


def _check_value(key: str, value: Any) -> Any:
    """CHOICES, then RULES, then NORMALIZE for one key: one GenImageError line naming the key."""
    if key in CHOICES and value not in CHOICES[key]:
        raise GenImageError(f"config key {key!r}: {value!r} is not one of {', '.join(CHOICES[key])}")
    problem = RULES[key](value) if key in RULES else None
    if problem:
        raise GenImageError(f"config key {key!r}: {problem}, got {value!r}")
    return NORMALIZE[key](value) if key in NORMALIZE else value


def _comma_list(value: str, item: Any) -> list[Any]:
    """`--set data.generators=sdv14,adm` / `aug.jpeg_quality=30,100`: a comma string for a list key
    (items parsed as YAML scalars unless the list holds strings)."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return parts if item is str else [yaml.safe_load(part) for part in parts]


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one value against its annotation; a mismatch is a GenImageError naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = _comma_list(value, item)
        elif item is str and isinstance(value, int) and not isinstance(value, bool):
            value = [str(value)]  # data.generators=1 (an id) reads as an int
        if not isinstance(value, (list, tuple)):
            raise GenImageError(f"config key {key!r}: expected a list, got {value!r}")
        if item is str:  # ids among names (data.generators=[1, 3]) are strings for the name check
            value = [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return [_coerce(v, item, key) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise GenImageError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise GenImageError(f"config key {key!r}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise GenImageError(f"config key {key!r}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise GenImageError(f"config key {key!r}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise GenImageError(f"config key {key!r}: expected a string, got {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise GenImageError(f"config section {prefix.rstrip('.') or 'top level'!r}: expected a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = prefix + str(key)
        if key not in names:
            raise GenImageError(f"unknown config key {full!r}{close_matches(str(key), names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, full + ".")
        else:
            kwargs[key] = _check_value(full, _coerce(value, tp, full))
    return cls(**kwargs)


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise GenImageError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply `a.b=c` overrides (values parsed as YAML) to a nested dict, in place."""
    for text in overrides:
        path, value = _parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise GenImageError(f"--set {text!r}: {part!r} is not a section")
        node[path[-1]] = value
    return data


def config_from_dict(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> RecipeConfig:
    """Build and validate a RecipeConfig from a nested dict plus overrides."""
    merged = apply_overrides(dict(data), overrides)
    cfg = _build(RecipeConfig, merged, "")  # every key's type, choices and RULES checked there
    tc = cfg.train  # global batch = per-rank batch x world x grad_accum (the world is checked at run time)
    if tc.global_batch_size < 0 or tc.global_batch_size % (tc.batch_size * tc.grad_accum):
        raise GenImageError(f"config: train.global_batch_size {tc.global_batch_size} is not train.batch_size "
                            f"{tc.batch_size} x train.grad_accum {tc.grad_accum} x a world size")
    return cfg


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RecipeConfig:
    """Read a recipe YAML (safe_load), apply overrides, validate. Errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise GenImageError(f"recipe not found: {path}")
    data = _read_recipe(path, ())
    data.setdefault("recipe", path.stem)
    return config_from_dict(data, overrides)


def _read_recipe(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A recipe's mapping; `base: OTHER.yaml` (relative to the file) is read first and overlaid, key by key."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise GenImageError(f"recipe {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise GenImageError(f"recipe {path}: expected a mapping of sections, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen or base_path == path.resolve():
        raise GenImageError(f"recipe {path}: base {base} includes itself")
    if not base_path.is_file():
        raise GenImageError(f"recipe {path}: base recipe not found: {base_path}")
    return _overlay(_read_recipe(base_path, (*seen, path.resolve())), data)


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _overlay(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def config_to_dict(cfg: RecipeConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: RecipeConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
