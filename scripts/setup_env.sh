#!/usr/bin/env bash
# Idempotent set-up: system libraries (when apt is there), .venv, torch first, then the package.
set -euo pipefail
cd "$(dirname "$0")/.."
STAMP=.venv/.setup-stamp
if [ -f "$STAMP" ] && [ "$STAMP" -nt setup.py ] && [ "$STAMP" -nt scripts/setup_env.sh ]; then
  exit 0
fi
need_pkgs="pkg-config libopencv-dev libturbojpeg0-dev g++ p7zip-full zip python3-venv"  # 7z + zip: unpack and its tests; python3-venv: Debian's python3 lacks ensurepip without it
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  for p in $need_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "setup: installing system libraries:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
else
  echo "setup: apt-get not available (or not root); skipping system libraries ($need_pkgs)." >&2
  echo "setup: the ffcv extra and PyTurboJPEG need them; install them yourself if missing." >&2
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip setuptools wheel numpy
# torch first: a plain timm install would otherwise drag in a newer torch.
.venv/bin/python -c "import torch, torchvision" 2>/dev/null || \
  .venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1" || \
  .venv/bin/pip install -q "torch>=2.4" "torchvision>=0.19"
# ffcv builds from source against numpy/opencv/turbojpeg; build it without isolation.
.venv/bin/python -c "import ffcv" 2>/dev/null || \
  .venv/bin/pip install -q --no-build-isolation "ffcv>=1.0.2" || \
  echo "setup: ffcv did not build; the ffcv backend will be unavailable" >&2
.venv/bin/pip install -q -e '.[all,test]'
touch "$STAMP"
