#!/usr/bin/env bash
# Download (here, with network) the wheels that bring mmengine + mmpretrain
# to a machine with python3.12 and torch but no OpenMMLab packages and no
# network (the lent GPU machine, /work/shared/notes/device.md), into DIR
# (default .whl, ignored by git), for WHEELS=DIR bash tools/benchmark/gpu_check.sh.
# mmcv is built without its compiled ops (a pure-Python wheel, ~1 s):
# enough for pre-training and classification; Mask R-CNN / UperNet need
# the ops and are not run there.
#   bash tools/benchmark/prepare_wheels.sh [DIR] [PYTHON]
set -euo pipefail
DIR="$(mkdir -p "${1:-.whl}" && cd "${1:-.whl}" && pwd)"
PY="${2:-python3}"
# absolute, as the mmcv build runs in another folder
if [[ "$PY" == */* ]]; then PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"; fi
P="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform any --platform manylinux2014_x86_64"
# importlib_metadata 10.x needs lazy_importer: keep 8.5.0; the package is
# model-index (modelindex is an unrelated placeholder)
"$PY" -m pip download $P -d "$DIR" mmengine==0.10.7 mmpretrain==1.2.0 addict yapf \
  termcolor mat4py model-index ordered-set platformdirs importlib_metadata==8.5.0
TMP="$(mktemp -d)"
# --no-build-isolation: the metadata step needs pkg_resources (setuptools < 70)
"$PY" -m pip download --no-deps --no-binary=:all: --no-build-isolation mmcv==2.1.0 -d "$TMP"
tar xzf "$TMP"/mmcv-2.1.0.tar.gz -C "$TMP"
# needs setuptools < 70 in $PY (mmcv 2.1.0's setup.py)
(cd "$TMP/mmcv-2.1.0" && MMCV_WITH_OPS=0 "$PY" -m pip wheel --no-deps --no-build-isolation . -w "$DIR")
rm -rf "$TMP"
ls -1 "$DIR"
