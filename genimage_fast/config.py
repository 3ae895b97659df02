"""Typed recipe configs: YAML -> dataclasses, unknown keys rejected by name, `--set a.b=c` overrides.

A recipe has the sections model, data, optim, schedule, loss, aug and train (DESIGN §4.5). Every run
writes its resolved config (`config.yaml`) so it can be rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
import types
import typing
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
    train_transform: str = "rrc"  # rrc (RandomResizedCrop + flip) | resize_crop (CNNSpot: short side, crop, flip)
    resize_size: int = 0  # short side for resize_crop / eval (0: image_size / 0.875)
    generators: list[str] = field(default_factory=list)  # train on these generators only (Task 1); [] = all
    val_generators: list[str] = field(default_factory=list)  # [] = all
    selection_fraction: float = 0.0  # hold out this share of train (per label x generator) to pick best.pt; 0 = val


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


@dataclass
class ScheduleConfig:
    name: str = "cosine"  # cosine | step | constant
    warmup_epochs: float = 0.0
    warmup_lr: float = 1e-6  # lr at the start of warm-up
    min_lr: float = 0.0  # cosine floor
    decay_epochs: float = 30.0  # step: decay every this many epochs
    decay_rate: float = 0.1  # step: multiply by this at each decay


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
    blur_prob: float = 0.0  # CNNSpot: Gaussian blur with sigma ~ U(0, blur_sigma_max)
    blur_sigma_max: float = 3.0
    jpeg_prob: float = 0.0  # CNNSpot: JPEG at a quality drawn uniformly from jpeg_quality
    jpeg_quality: list[int] = field(default_factory=lambda: [30, 100])


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
    "data.train_transform": ("rrc", "resize_crop"),
    "optim.name": ("sgd", "adam", "adamw"),
    "schedule.name": ("cosine", "step", "constant"),
    "loss.name": ("ce", "bce", "nll", "jsd_ce"),
}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one value against its annotation; a mismatch is a GenImageError naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise GenImageError(f"config key {key!r}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
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
            kwargs[key] = _coerce(value, tp, full)
            if full in CHOICES and kwargs[key] not in CHOICES[full]:
                raise GenImageError(f"config key {full!r}: {value!r} is not one of {', '.join(CHOICES[full])}")
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
    cfg = _build(RecipeConfig, merged, "")
    if cfg.train.batch_size < 1 or cfg.train.epochs < 0 or cfg.train.max_steps < 0 or cfg.train.grad_accum < 1:
        raise GenImageError("config: train.batch_size and train.grad_accum must be >= 1, epochs/max_steps >= 0")
    if cfg.data.image_size < 8:
        raise GenImageError(f"config key 'data.image_size': {cfg.data.image_size} is too small")
    return cfg


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RecipeConfig:
    """Read a recipe YAML (safe_load), apply overrides, validate. Errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise GenImageError(f"recipe not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise GenImageError(f"recipe {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    data.setdefault("recipe", path.stem)
    return config_from_dict(data, overrides)


def config_to_dict(cfg: RecipeConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: RecipeConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
