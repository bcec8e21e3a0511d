#!/usr/bin/env bash
# One command for the pictures in the README ("Seeing what the model
# learned"): set up the environment, train the three CPU demos when their
# work dirs have no checkpoint (SdAE, RC-MAE, MAE: same data, schedule and
# ViT size), then draw from their final checkpoints:
#   attention maps (SdAE vs MAE), average attention distance (SdAE student,
#   SdAE teacher, RC-MAE teacher, MAE), the masking / decoder output of one
#   batch for each method, and the training curves with the kNN monitor.
# Output: docs/figures/ (PNG + the JSON numbers behind each picture).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY=.venv/bin/python
OUT=${OUT:-docs/figures}
SDAE=configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py
RCMAE=configs/rcmae/rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py
MAE=configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py

train() {  # config work_dir
  if [ ! -f "$2/last_checkpoint" ]; then
    "$PY" tools/train.py "$1" --work-dir "$2"
  fi
}
train "$SDAE" work_dirs/demo
train "$RCMAE" work_dirs/rcmae_demo
train "$MAE" work_dirs/mae_demo
ckpt() { cat "$1/last_checkpoint"; }

mkdir -p "$OUT"
"$PY" tools/analysis_tools/vis_attention.py \
  "$SDAE" "$(ckpt work_dirs/demo)" --compare "$MAE" "$(ckpt work_dirs/mae_demo)" \
  --labels SdAE MAE --out-dir "$OUT/attention_maps"
"$PY" tools/analysis_tools/attention_distance.py \
  "$SDAE" "$(ckpt work_dirs/demo)" "$SDAE" "$(ckpt work_dirs/demo)" \
  "$RCMAE" "$(ckpt work_dirs/rcmae_demo)" "$MAE" "$(ckpt work_dirs/mae_demo)" \
  --encoder student teacher teacher auto \
  --labels "SdAE student" "SdAE teacher" "RC-MAE teacher" MAE \
  --out-dir "$OUT/attention_distance"
for pair in "$SDAE work_dirs/demo" "$RCMAE work_dirs/rcmae_demo" "$MAE work_dirs/mae_demo"; do
  set -- $pair
  "$PY" tools/analysis_tools/vis_masking.py "$1" "$(ckpt "$2")" --num-images 2 --out-dir "$OUT/masking"
done
"$PY" tools/analysis_tools/plot_curves.py work_dirs/demo work_dirs/rcmae_demo work_dirs/mae_demo \
  --labels SdAE RC-MAE MAE --out "$OUT/training_curves.png"
echo "[vis demo] pictures and numbers in $OUT/"
