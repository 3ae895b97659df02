#!/usr/bin/env bash
# `make test-minimal`: the test suite as on the GPU validation box, which has torch, torchvision, timm and
# numba but no nvidia-dali, ffcv or PyTurboJPEG. Stub modules that raise ModuleNotFoundError shadow the
# installed ones (PYTHONPATH, inherited by worker processes), so every case needing them must skip
# cleanly: never fail, never pass by testing something else. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
stubs=$(mktemp -d "${TMPDIR:-/tmp}/genimage-noext.XXXXXX")
trap 'rm -rf "$stubs"' EXIT
mkdir -p "$stubs/nvidia"
for mod in ffcv turbojpeg wds2idx; do  # wds2idx: DALI's index tool, a top-level module of its wheel
  echo "raise ModuleNotFoundError(\"No module named '$mod'\", name='$mod')" > "$stubs/$mod.py"
done
echo "raise ModuleNotFoundError(\"No module named 'nvidia.dali'\", name='nvidia.dali')" > "$stubs/nvidia/dali.py"
# The installed `nvidia` is a regular package (cudnn, nccl, nvjpeg, ...): the stand-in takes its place
# but extends its path to the real one, so only nvidia.dali is missing.
cat > "$stubs/nvidia/__init__.py" <<'PY'
import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
PY
export PYTHONPATH="$stubs${PYTHONPATH:+:$PYTHONPATH}"
# Refuse to run the normal suite under this name: each stub must really hide its library.
"$PY" - <<'PY'
import importlib

for name in ("ffcv", "turbojpeg", "nvidia.dali", "wds2idx"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"test-minimal: the stub for {name} does not hide it")
import torch  # noqa: F401  what the GPU box does have must still import
PY
echo "test-minimal: nvidia-dali, ffcv and PyTurboJPEG hidden by stubs in $stubs"
"$PY" -m pytest -q "$@"
