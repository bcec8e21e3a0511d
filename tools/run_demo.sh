#!/usr/bin/env bash
# One command: set up the environment (reused when present) and run a short
# SdAE pre-training on the embedded procedural images, on the CPU.
# Prints a summary at the end: loss at start and end, images/s, checkpoint.
# Extra arguments go to tools/train.py (e.g. --cfg-options train_cfg.max_epochs=2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
exec .venv/bin/python tools/train.py \
  configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py \
  --work-dir work_dirs/demo "$@"
