#!/usr/bin/env bash
# One-call GPU check of every method (issue 16): see the docstring of
# tools/benchmark/gpu_check.py for what it runs and writes.
#
#   bash tools/benchmark/gpu_check.sh OUT_DIR [--dry-run] [--budget-s S] [--scratch DIR]
#
# --dry-run: the same sections on the CPU with the tiny demo configs
# (tests/test_tools/test_gpu_check.py runs it in CI).
#
# On a machine whose python has torch with CUDA but no OpenMMLab packages
# (the lent H200: python3.12, torch 2.11, nothing to download), prepare a
# wheel folder here first and carry it with the call:
#   bash tools/benchmark/prepare_wheels.sh .whl      # here, with network
#   WHEELS=.whl bash tools/benchmark/gpu_check.sh "$OUT"           # there
# WHEELS installs every wheel of that folder into $SITE (default
# /tmp/mmsdae_site, no dependencies, no index) and puts it and the checkout
# on PYTHONPATH. PYTHON picks the interpreter (default: .venv/bin/python
# when there is one and WHEELS is unset, else python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: bash tools/benchmark/gpu_check.sh OUT_DIR [--dry-run] [--budget-s S]" >&2
  exit 2
fi
OUT="$1"; shift
if [ -n "${WHEELS:-}" ]; then
  SITE="${SITE:-/tmp/mmsdae_site}"
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  if [ ${#wheels[@]} -eq 0 ]; then
    echo "gpu_check.sh: WHEELS=$WHEELS holds no .whl files; run tools/benchmark/prepare_wheels.sh $WHEELS first" >&2
    exit 2
  fi
  PYTHON="${PYTHON:-python3}"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "${wheels[@]}"
  export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
elif [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import torch; print("[gpu_check] torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
exec "$PYTHON" "$ROOT/tools/benchmark/gpu_check.py" "$OUT" --python "$PYTHON" "$@"
