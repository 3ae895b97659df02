"""Checkpoints: atomic writes, `weights_only=True` loads, and every RNG state for exact resume.

RNG states are stored as tensors and plain lists/ints (never numpy objects or tuples of them), so
the restricted unpickler of `torch.load(weights_only=True)` accepts the file.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genimage_fast.atomic import atomic_path
from genimage_fast.errors import GenImageError

CHECKPOINT_VERSION = 1


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers (their state_dict keys carry prefixes)."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def capture_rng(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python RNG states, plus named torch.Generators."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "internal": list(py_internal), "gauss_next": py_gauss},
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Inverse of capture_rng; named generators present in both are restored."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    for name, gen in (generators or {}).items():
        if name in state.get("generators", {}):
            gen.set_state(state["generators"][name])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """torch.save to a temp file in the same folder; atomic_path fsyncs it, renames it and fsyncs the
    folder: never a half-written file, even after a power loss."""
    with atomic_path(path) as tmp:
        with tmp.open("wb") as handle:
            torch.save({**state, "version": CHECKPOINT_VERSION}, handle)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with weights_only=True (no arbitrary code from a checkpoint); clear error when missing."""
    path = Path(path)
    if not path.is_file():
        raise GenImageError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated / foreign file: say which one and why, in one line
        raise GenImageError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None
