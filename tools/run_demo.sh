#!/usr/bin/env bash
# One command: set up the environment (reused when present) and pre-train a
# small SdAE on the CPU on the learning benchmark's shape task, long enough
# for its kNN monitor to rise above the random encoder's (about 10 min on 2
# cores). Prints a summary at the end: loss at start and end, images/s,
# checkpoint. Extra arguments go to tools/train.py (e.g.
# --cfg-options train_dataloader.num_workers=4). A 20-second smoke run that learns
# nothing measurable: configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
exec .venv/bin/python tools/train.py \
  configs/sdae/sdae_vit-tiny-p8_1xb128-24e_shape-task-64px.py \
  --work-dir work_dirs/demo "$@"
