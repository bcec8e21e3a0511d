#!/usr/bin/env bash
# Build the mmsdae environment (CPU) into .venv, from scratch or incrementally.
#
# What it does (see ../shared/notes/environment.md for why each pin exists):
#   1. python3 -m venv .venv
#   2. torch 2.14.1 + torchvision 0.29.1
#   3. setuptools<70 (mmcv's setup.py imports pkg_resources), mmengine 0.10.7
#   4. mmcv 2.1.0 built from its sdist with ops; setup.py patched to -std=c++20
#      (torch >= 2.10 headers require C++20). The built wheel is cached in
#      $MMSDAE_WHEELHOUSE (default ~/.cache/mmsdae/wheels) so a rebuild is seconds.
#   5. mmpretrain 1.2.0, mmdet 3.3.0, mmsegmentation 1.2.2 (+ ftfy, regex that
#      mmseg imports without declaring), pytest, and mmsdae itself (editable).
#
# Usage: bash tools/setup_env.sh [VENV_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
WHEELHOUSE="${MMSDAE_WHEELHOUSE:-$HOME/.cache/mmsdae/wheels}"
TORCH_VER=2.14.1
TV_VER=0.29.1
MMCV_VER=2.1.0
log() { echo "[setup_env $(date +%H:%M:%S)] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q -U pip wheel

have() { "$PY" - "$@" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
name, want = sys.argv[1], sys.argv[2]
sys.exit(0 if version(name).split('+')[0] == want else 1)
PYEOF
}

if ! have torch "$TORCH_VER" || ! have torchvision "$TV_VER"; then
  log "installing torch==$TORCH_VER torchvision==$TV_VER"
  "${PIP[@]}" install -q "torch==$TORCH_VER" "torchvision==$TV_VER"
fi
log "installing build requirements and mmengine"
"${PIP[@]}" install -q "setuptools<70" "mmengine==0.10.7" numpy ninja psutil

if ! have mmcv "$MMCV_VER" || ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
  TAG="torch${TORCH_VER}-$("$PY" -c 'import sys;print(f"cp{sys.version_info.major}{sys.version_info.minor}")')"
  CACHE="$WHEELHOUSE/$TAG"
  mkdir -p "$CACHE"
  WHL=$(ls "$CACHE"/mmcv-"$MMCV_VER"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$WHL" ]; then
    log "building mmcv $MMCV_VER with ops from source (about 17 minutes on 2 cores)"
    SRC=$(mktemp -d)
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VER" -d "$SRC"
    tar -xzf "$SRC"/mmcv-"$MMCV_VER".tar.gz -C "$SRC"
    SETUP="$SRC/mmcv-$MMCV_VER/setup.py"
    grep -q "'-std=c++17'" "$SETUP" || { echo "setup_env: mmcv setup.py layout changed: no '-std=c++17' to patch in $SETUP" >&2; exit 1; }
    sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SETUP"
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" wheel -q --no-deps --no-build-isolation "$SRC/mmcv-$MMCV_VER" -w "$CACHE"
    rm -rf "$SRC"
    WHL=$(ls "$CACHE"/mmcv-"$MMCV_VER"-*.whl | head -n1)
  else
    log "using cached mmcv wheel $WHL"
  fi
  "${PIP[@]}" install -q --no-deps "$WHL"
  "${PIP[@]}" install -q "mmcv==$MMCV_VER" --find-links "$CACHE"
fi

log "installing mmpretrain / mmdet / mmseg and test tools"
"${PIP[@]}" install -q "mmpretrain==1.2.0" "mmdet==3.3.0" "mmsegmentation==1.2.2" ftfy regex pytest
log "installing mmsdae (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
"$PY" -c "import mmcv.ops, mmpretrain, mmdet, mmseg, mmsdae; print('environment ok: torch', __import__('torch').__version__, 'mmcv', mmcv.__version__)"
