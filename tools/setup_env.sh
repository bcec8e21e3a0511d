#!/usr/bin/env bash
# Build (or reuse) the mmsdae environment in a virtual environment.
#
# The stack's versions are pinned in one place, requirements/*.txt (which
# setup.py reads as well); this script installs exactly those.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pin() {  # pin NAME -> the version requirements/runtime.txt pins for NAME
  sed -n "s/^$1==\([^ #]*\).*/\1/p" "$ROOT/requirements/runtime.txt"
}
TORCH_VER=$(pin torch)        # CPU machine: installs from the local package index
TORCHVISION_VER=$(pin torchvision)
MMENGINE_VER=$(pin mmengine)
MMCV_VER=$(pin mmcv)          # last release that mmdet 3.3 / mmseg 1.2 accept; no
                              # wheel exists for this torch: built from source
# mmcv 2.1.0's setup.py imports pkg_resources the old way: it is built with
# this setuptools, which torch does not accept at run time; the last step
# installs the requirements' setuptools (see requirements/runtime.txt).
MMCV_BUILD_SETUPTOOLS='setuptools<70'
#
# Steps: venv -> torch/torchvision -> mmengine -> mmcv with compiled ops
# (MMCV_WITH_OPS=1, built with $MMCV_BUILD_SETUPTOOLS; setup.py patched to
# -std=c++20 when torch >= 2.10, whose headers refuse C++17) -> the rest of
# requirements.txt (mmpretrain/mmdet/mmseg, the run-time setuptools, pytest,
# tensorboard) -> mmsdae (editable) -> `pip check` must be clean.
# The mmcv wheel is cached in $MMSDAE_WHEELHOUSE (default
# ~/.cache/mmsdae/wheels/<torch version>-<python>/), so it is built once per
# machine (7 minutes measured on 2 cores here; up to ~17 on slower ones) and
# reinstalled in seconds.
# A second run with nothing changed returns in a few seconds.
#
# Usage: bash tools/setup_env.sh [VENV_DIR]      (default: ./.venv)
# Environment:
#   MMSDAE_SYSTEM_TORCH=1  build the venv with --system-site-packages and keep
#                          the torch already installed there (e.g. a cluster's
#                          CUDA build) instead of installing TORCH_VER.
#   MMSDAE_WHEELHOUSE=DIR  where built mmcv wheels are kept.
#   MAX_JOBS=N             parallel compile jobs for mmcv (default: nproc).
set -euo pipefail
VENV="${1:-$ROOT/.venv}"
WHEELHOUSE="${MMSDAE_WHEELHOUSE:-$HOME/.cache/mmsdae/wheels}"
STAMP="$VENV/.mmsdae-env-stamp"
log() { echo "[setup_env $(date +%H:%M:%S)] $*"; }
die() { echo "[setup_env] ERROR: $*" >&2; exit 1; }

[ -n "$TORCH_VER" ] && [ -n "$MMCV_VER" ] || die "requirements/runtime.txt pins no torch==X / mmcv==X."
WANT_STAMP="$(cat "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" "$ROOT/requirements.txt" "$ROOT"/requirements/*.txt | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] \
   && "$VENV/bin/python" -c "import mmcv.ops, mmpretrain, mmdet, mmseg, mmsdae" 2>/dev/null; then
  log "environment is up to date: $VENV"
  exit 0
fi
rm -f "$STAMP"

command -v python3 >/dev/null || die "python3 not found: install Python >= 3.8 (3.11 is tested)."
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  if [ "${MMSDAE_SYSTEM_TORCH:-0}" = 1 ]; then
    python3 -m venv --system-site-packages "$VENV"
  else
    python3 -m venv "$VENV" || die "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)."
  fi
fi
PY="$VENV/bin/python"
pip_quiet() {  # quiet pip; drops this machine's "Location ... is ignored" noise
  "$PY" -m pip --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}
pip_install() { pip_quiet install "$@"; }
installed() {  # installed NAME VERSION -> exit 0 when that version is there
  "$PY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version(sys.argv[1]).split('+')[0] == sys.argv[2] else 1)
PYEOF
}

pip_install -U pip wheel
if [ "${MMSDAE_SYSTEM_TORCH:-0}" = 1 ] && "$PY" -c "import torch, torchvision" 2>/dev/null; then
  log "keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
elif ! installed torch "$TORCH_VER" || ! installed torchvision "$TORCHVISION_VER"; then
  log "installing torch==$TORCH_VER torchvision==$TORCHVISION_VER"
  pip_install "torch==$TORCH_VER" "torchvision==$TORCHVISION_VER"
fi
log "installing mmengine==$MMENGINE_VER"
pip_install "mmengine==$MMENGINE_VER" numpy ninja psutil

if ! installed mmcv "$MMCV_VER" || ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
  TAG=$("$PY" -c 'import sys, torch; print(f"torch{torch.__version__}-cp{sys.version_info.major}{sys.version_info.minor}".replace("+", "_"))')
  CACHE="$WHEELHOUSE/$TAG"
  mkdir -p "$CACHE"
  WHL=$(ls "$CACHE"/mmcv-"$MMCV_VER"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$WHL" ]; then
    command -v g++ >/dev/null || die "no C++ compiler (g++) found, needed to build mmcv's ops: install one (Debian: apt-get install g++)."
    log "building mmcv $MMCV_VER with ops from source into $CACHE (7-17 minutes on 2 cores; pip may report that torch wants setuptools>=77: the last step installs it)"
    pip_install "$MMCV_BUILD_SETUPTOOLS"
    SRC=$(mktemp -d)
    trap 'rm -rf "$SRC"' EXIT
    pip_quiet download --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VER" -d "$SRC" \
      || die "could not download the mmcv $MMCV_VER source from the package index."
    tar -xzf "$SRC"/mmcv-"$MMCV_VER".tar.gz -C "$SRC"
    SETUP="$SRC/mmcv-$MMCV_VER/setup.py"
    if "$PY" -c "import sys, torch; v = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(0 if v >= (2, 10) else 1)"; then
      grep -q "'-std=c++17'" "$SETUP" || die "mmcv's setup.py has no '-std=c++17' to switch to c++20 ($SETUP): the patch needs updating."
      sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SETUP"
    fi
    FORCE_CUDA=0
    "$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null && FORCE_CUDA=1
    if ! MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE_CUDA MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
         "$PY" -m pip wheel -q --no-deps --no-build-isolation "$SRC/mmcv-$MMCV_VER" -w "$CACHE" > "$SRC/build.log" 2>&1; then
      tail -n 40 "$SRC/build.log" >&2
      cp "$SRC/build.log" "$CACHE/mmcv-build-failed.log"
      die "building mmcv $MMCV_VER failed (last lines above; full log: $CACHE/mmcv-build-failed.log)."
    fi
    WHL=$(ls "$CACHE"/mmcv-"$MMCV_VER"-*.whl | head -n1)
  else
    log "reusing the cached mmcv wheel $WHL"
  fi
  pip_install --no-deps "$WHL"
  pip_install "mmcv==$MMCV_VER" --find-links "$CACHE"
fi

log "installing the rest of requirements.txt (mmpretrain, mmdet, mmsegmentation, setuptools, pytest, tensorboard)"
REQS="$ROOT/requirements.txt"
if [ "${MMSDAE_SYSTEM_TORCH:-0}" = 1 ]; then  # keep the system torch
  REQS=$(mktemp)
  grep -hvE '^(torch|torchvision)==|^-r ' "$ROOT"/requirements/*.txt > "$REQS"
fi
pip_install --find-links "$WHEELHOUSE/$("$PY" -c 'import sys, torch; print(f"torch{torch.__version__}-cp{sys.version_info.major}{sys.version_info.minor}".replace("+", "_"))')" \
  -r "$REQS"
log "installing mmsdae (editable)"
EDITABLE_LOG=$(mktemp)
"$PY" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$ROOT" > "$EDITABLE_LOG" 2>&1 \
  || { cat "$EDITABLE_LOG" >&2; die "pip install -e $ROOT failed (output above)."; }
rm -f "$EDITABLE_LOG"
if ! CHECK=$("$PY" -m pip --disable-pip-version-check check 2>&1); then
  echo "$CHECK" >&2
  if [ "${MMSDAE_SYSTEM_TORCH:-0}" = 1 ]; then
    log "WARNING: pip check is not clean beside the system torch (above)"
  else
    die "pip check found inconsistent requirements (above)."
  fi
fi
"$PY" -c "import torch, mmcv, mmcv.ops, mmpretrain, mmdet, mmseg, mmsdae; print('[setup_env] ready: torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmpretrain', mmpretrain.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmsdae', mmsdae.__version__)"
echo "$WANT_STAMP" > "$STAMP"
