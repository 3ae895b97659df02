#!/usr/bin/env bash
# `make gpu-check`: from a fresh checkout on a GPU machine (no internet; torch, triton, torchvision,
# timm, numba in the system python), install the package without dependencies into a venv that sees
# the system site-packages, then run the time-boxed stages (genimage_fast/bench/gpucheck/runner.py).
# Writes $OUT/gpu-check.json (schema: benchmarks/README.md) and $OUT/gpu-check.md. ~8 minutes at most.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${GPU_CHECK_OUT:-runs/gpu-check}
TOTAL=${GPU_CHECK_BUDGET:-470}  # seconds for everything, install included
PY=${PYTHON:-python3}
VENV=runs/venv-gpu-check  # under runs/ (git-ignored); --without-pip: the system pip serves it
T0=$(date +%s)
mkdir -p "$OUT"
if ! "$PY" -c "import torch" 2> /dev/null; then
  echo "gpu-check: $PY cannot import torch (set PYTHON to the python that has torch, triton, torchvision)" >&2
  exit 3
fi
source_tree() {  # no install: setup.py maps genimage_fast.kernels -> kernels/; a link does the same
  [ -e genimage_fast/kernels ] || ln -s ../kernels genimage_fast/kernels
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  RUN="$PY"
}
RUN="$PY"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv --system-site-packages --without-pip "$VENV" > "$OUT/venv.log" 2>&1 || rm -rf "$VENV"
fi
# A venv sees the *base* interpreter's packages: if $PY is itself a venv, torch is not there.
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch" 2> /dev/null; then
  RUN="$VENV/bin/python"
  if ! "$RUN" -m pip install -q --no-deps --no-index --no-build-isolation -e . > "$OUT/pip.log" 2>&1; then
    echo "gpu-check: editable install failed (see $OUT/pip.log); running from the source tree" >&2
    tail -3 "$OUT/pip.log" >&2
    source_tree
  fi
else
  echo "gpu-check: no usable venv over $PY's packages; running from the source tree" >&2
  rm -rf "$VENV"
  source_tree
fi
if ! "$RUN" -c "import genimage_fast.kernels.jpeg_reference, genimage_fast.bench.gpucheck.runner"; then
  echo "gpu-check: the package does not import; stopping" >&2
  exit 3
fi
LEFT=$(( TOTAL - ($(date +%s) - T0) ))
echo "gpu-check: installed in $(( $(date +%s) - T0 ))s with $RUN; ${LEFT}s left for the stages"
"$RUN" -m genimage_fast.bench.gpucheck --out "$OUT" --budget "$LEFT" "$@"
