"""ImageNet init from local files (`model.pretrained: PATH`); nothing is ever downloaded.

`load_pretrained(model, path, name)` reads a checkpoint in the formats users have and maps it onto
the detector strictly: every tensor of the detector is loaded from the file or belongs to a part the
detector intentionally keeps at its fresh initialisation (its head, and the parts ImageNet has no
weights for), and every tensor of the file is loaded or is the ImageNet classifier (dropped).
Anything else -- a missing tensor, a tensor of the wrong shape, a tensor the detector has no place
for -- is one GenImageError line naming the first such tensor. BatchNorm `num_batches_tracked`
counters are the one exemption: the 2017-era torchvision and Cadene files predate them, so a
missing counter stays 0 (it only matters for BN momentum=None, which no detector here uses).

Formats (after unwrapping a `{"state_dict": ...}` / `{"model": ...}` checkpoint dict and DDP's
`module.` prefix; `.safetensors` files too):
- torchvision and timm ResNet state dicts (resnet18/34/50: torchvision `resnet50-19c8e357.pth`,
  `resnet34-333f7ec4.pth`, `resnet18-5c106cde.pth`, or timm's). Their key names coincide (timm's
  ResNet keeps torchvision's `conv1`, `bn1`, `layerN.M.*`, `downsample.*`, `fc`), so one mapping
  serves both: the backbone goes into the detector's wrapped network, `fc` (1000-way) is dropped.
- the Xception checkpoint F3Net loads, Cadene pretrainedmodels' `xception-b5690688.pth` (2-D
  `pointwise` weights, which F3Net reshapes with `unsqueeze(-1).unsqueeze(-1)`: GenImage
  detector_codes/F3Net-main/f3net.py:236-238), or timm's `legacy_xception` state dict (4-D
  pointwise); the classifier is `fc` (or `last_linear`, Cadene's name after loading). Both F3Net
  streams get the whole backbone; conv1 (3 -> 32) is widened as the original's `_init_xcep_fad` /
  `_init_xcep_lfs` do (f3net.py:61-77): FAD conv1[:, 3i:3i+3] = conv1 / 4 for i < 4; LFS
  conv1[:, 3i:3i+3] = conv1 / (M / 3) for i < int(M / 3), the rest at its fresh init.
- a detector's own state dict (e.g. a genimage-fast checkpoint): loaded as is; head tensors whose
  shape differs stay fresh.

Per detector (`MAPPINGS`, by model name): cnnspot / resnet50 / spec / deit_s / swin_t: a timm/torch-
vision backbone into `net` (head fresh; CNNSpot's head weight then drawn from N(0, 0.02), as
CNNDetection networks/trainer.py:16-18 does); gramnet: ResNet-18 into `body` (Gram branches, scale,
head fresh); f3net: Xception into `fad_xcep` and `lfs_xcep` (FAD/LFS heads, MixBlocks, fc fresh).
The result is recorded: `PretrainedInfo` (path, sha256, format, counts, fresh parts) is attached to
the model as `model.pretrained_info` for the run's records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.records.hashing import sha256_file
from genimage_fast.registry import Registry

IMAGENET_HEADS = ("fc", "last_linear", "head")  # torchvision/timm ResNet + Xception, Cadene, timm ViTs
_NBT = "num_batches_tracked"


@dataclass(frozen=True)
class PretrainedInfo:
    """What was loaded from where (recorded in run.json and the dry run)."""

    path: str
    sha256: str
    format: str
    loaded: int  # detector tensors set from the file
    dropped: tuple[str, ...]  # file tensors not used (the ImageNet classifier)
    fresh: tuple[str, ...]  # detector parts intentionally left at (or given) their fresh init

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Mapping:
    """A file's tensors placed in the detector: target key -> (file key, tensor)."""

    tensors: dict[str, tuple[str, torch.Tensor]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    fresh: tuple[str, ...] = ()  # detector prefixes that the file does not provide, on purpose
    heads: tuple[str, ...] = ()  # detector prefixes whose mismatching file tensors are skipped
    format: str = "state dict"
    after: Callable[[nn.Module], None] | None = None  # e.g. the original's head re-initialisation


Mapper = Callable[[nn.Module, dict[str, torch.Tensor]], Mapping]
MAPPINGS: Registry[Mapper] = Registry("pretrained mapping")


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A file's tensors: bare state dict, or wrapped in "state_dict" / "model"; `module.` stripped."""
    if not path.is_file():
        raise GenImageError(f"pretrained file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (whatever the reader raises: a pickle, zip or header error)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GenImageError(f"pretrained file {path}: cannot be read ({first})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise GenImageError(f"pretrained file {path}: not a state dict of tensors (nor one under 'state_dict' "
                            "or 'model')")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


def _backbone(source: dict[str, torch.Tensor], prefix: str, mapping: Mapping) -> None:
    """Place a bare backbone under `prefix`, dropping its ImageNet classifier."""
    for key, value in source.items():
        if _under(key, IMAGENET_HEADS):
            mapping.dropped.append(key)
        else:
            mapping.tensors[prefix + key] = (key, value)


def _is_own(model: nn.Module, source: dict[str, torch.Tensor]) -> bool:
    """A detector's own state dict (its keys are the model's), not a bare backbone."""
    own = model.state_dict()
    return sum(k in own for k in source) > len(source) // 2


def _generic(model: nn.Module, source: dict[str, torch.Tensor]) -> Mapping:
    """A detector's own checkpoint, or a backbone for a model wrapping it as `net` (NormalizedNet, SpecNet)."""
    heads = tuple(getattr(model, "head_prefixes", ()))
    if _is_own(model, source) or not hasattr(model, "net"):
        return Mapping({k: (k, v) for k, v in source.items()}, heads=heads, format="detector state dict")
    mapping = Mapping(fresh=heads, format="timm/torchvision state dict")
    _backbone(source, "net.", mapping)
    return mapping


def _cnnspot(model: nn.Module, source: dict[str, torch.Tensor]) -> Mapping:
    mapping = _generic(model, source)
    if mapping.format != "detector state dict":
        # CNNDetection networks/trainer.py:16-18: fc = nn.Linear(2048, 1); normal_(fc.weight, 0.0, init_gain 0.02)
        mapping.after = lambda m: nn.init.normal_(m.net.fc.weight, 0.0, 0.02)
    return mapping


def _gramnet(model: nn.Module, source: dict[str, torch.Tensor]) -> Mapping:
    if _is_own(model, source):
        return _generic(model, source)
    mapping = Mapping(fresh=("branches", "scale", "head"), format="timm/torchvision state dict")
    _backbone(source, "body.", mapping)
    return mapping


def _f3net(model: nn.Module, source: dict[str, torch.Tensor]) -> Mapping:
    if _is_own(model, source):
        return _generic(model, source)
    flat = [k for k, v in source.items() if k.endswith("pointwise.weight") and v.ndim == 2]
    fmt = "Cadene xception (2-D pointwise, reshaped)" if flat else "timm legacy_xception state dict"
    # f3net.py:236-238: `if 'pointwise' in name: state_dict[name] = weights.unsqueeze(-1).unsqueeze(-1)`
    source = {k: (v.unsqueeze(-1).unsqueeze(-1) if k in flat else v) for k, v in source.items()}
    mapping = Mapping(fresh=("fad_head", "lfs_head", "mix_block7", "mix_block12", "fc"), format=fmt)
    conv1 = source.get("conv1.weight")
    for prefix in ("fad_xcep.", "lfs_xcep."):
        _backbone(source, prefix, mapping)
    mapping.dropped = sorted(set(mapping.dropped))
    if conv1 is None or conv1.shape[1] != 3:
        return mapping  # the strict check names conv1.weight (missing / wrong shape)
    own = model.state_dict()
    fad = own["fad_xcep.conv1.weight"].clone()
    for i in range(fad.shape[1] // 3):  # f3net.py:66-67 (4 copies for the 12 FAD channels)
        fad[:, i * 3:(i + 1) * 3] = conv1 / 4.0
    lfs = own["lfs_xcep.conv1.weight"].clone()
    m = lfs.shape[1]
    for i in range(int(m / 3)):  # f3net.py:75-76
        lfs[:, i * 3:(i + 1) * 3] = conv1 / float(m / 3.0)
    if fad.shape[2:] == conv1.shape[2:] == lfs.shape[2:] and fad.shape[0] == conv1.shape[0] == lfs.shape[0]:
        mapping.tensors["fad_xcep.conv1.weight"] = ("conv1.weight", fad)
        mapping.tensors["lfs_xcep.conv1.weight"] = ("conv1.weight", lfs)
    return mapping


for _name in ("resnet50", "spec", "deit_s", "swin_t"):
    MAPPINGS.add(_name, _generic)
MAPPINGS.add("cnnspot", _cnnspot)
MAPPINGS.add("gramnet", _gramnet)
MAPPINGS.add("f3net", _f3net)


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def _problems(model: nn.Module, mapping: Mapping) -> list[str]:
    """Missing and mis-shaped tensors in the detector's order, then the file's unexpected ones."""
    own = model.state_dict()
    problems: list[str] = []
    for key, target in own.items():
        if key in mapping.tensors:
            file_key, value = mapping.tensors[key]
            if value.shape != target.shape and not _under(key, mapping.heads):
                problems.append(f"tensor {file_key!r} has the wrong shape: {_shape(value)} in the file, "
                                f"{_shape(target)} in the model ({key})")
        elif not (_under(key, mapping.fresh) or _under(key, mapping.heads) or key.endswith(_NBT)):
            problems.append(f"missing tensor for {key!r}")
    problems += [f"unexpected tensor {file_key!r} (the model has no {key!r})"
                 for key, (file_key, _) in mapping.tensors.items() if key not in own]
    return problems


def load_pretrained(model: nn.Module, path: str | Path, name: str | None = None) -> PretrainedInfo:
    """Load a local checkpoint into `model` (model registry `name` picks the mapping), strictly."""
    path = Path(path)
    source = read_state_dict(path)
    mapper = MAPPINGS.get(name) if name in MAPPINGS else _generic
    mapping = mapper(model, source)
    problems = _problems(model, mapping)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GenImageError(f"pretrained file {path} does not fit {name or 'the model'} ({mapping.format}): "
                            f"{problems[0]}{more}")
    own = model.state_dict()
    usable = {k: v for k, (_, v) in mapping.tensors.items() if v.shape == own[k].shape}
    with torch.no_grad():
        model.load_state_dict(usable, strict=False)
        if mapping.after is not None:
            mapping.after(model)
    skipped_heads = tuple(sorted({h for h in mapping.heads for k in own if _under(k, (h,)) and k not in usable}))
    info = PretrainedInfo(path=str(path.resolve()), sha256=sha256_file(path), format=mapping.format,
                          loaded=len(usable), dropped=tuple(mapping.dropped),
                          fresh=tuple(mapping.fresh) + skipped_heads)
    model.pretrained_info = info  # type: ignore[assignment]  (read by the trainer for run.json)
    return info


def pretrained_record(model: nn.Module) -> dict[str, Any] | None:
    """The run's record of the init file (None when the model started from scratch)."""
    info = getattr(model, "pretrained_info", None)
    return info.as_dict() if isinstance(info, PretrainedInfo) else None
