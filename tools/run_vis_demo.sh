#!/usr/bin/env bash
# One command for the pictures in the README ("Seeing what the model
# learned"): set up the environment, train the three CPU demos afresh into
# work_dirs/vis_demo/ (SdAE, RC-MAE, MAE: same data, schedule and ViT size;
# deterministic, ~10 s each), then draw from their final checkpoints:
#   attention maps (SdAE vs MAE), the 10 % attention region of one query
#   patch (RC-MAE, MAE, SdAE), average attention distance (SdAE student,
#   SdAE teacher, RC-MAE teacher, MAE), the masking / decoder output of one
#   batch for each method. (docs/figures/training_curves.png comes from
#   the learning benchmark's longer runs: README, "Watching training".)
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

W=work_dirs/vis_demo
train() {  # config work_dir
  rm -rf "$2"
  "$PY" tools/train.py "$1" --work-dir "$2"
}
train "$SDAE" $W/sdae
train "$RCMAE" $W/rcmae
train "$MAE" $W/mae
# the final checkpoint, relative to the repository (paths land in the JSON)
ckpt() { realpath --relative-to="$ROOT" "$(cat "$1/last_checkpoint")"; }

mkdir -p "$OUT"
"$PY" tools/analysis_tools/vis_attention.py \
  "$SDAE" "$(ckpt $W/sdae)" --compare "$MAE" "$(ckpt $W/mae)" \
  --labels SdAE MAE --out-dir "$OUT/attention_maps"
"$PY" tools/analysis_tools/vis_attention.py \
  "$RCMAE" "$(ckpt $W/rcmae)" --compare "$MAE" "$(ckpt $W/mae)" \
  --compare "$SDAE" "$(ckpt $W/sdae)" --labels RC-MAE MAE SdAE \
  --query 3 4 --out-dir "$OUT/query_regions"
"$PY" tools/analysis_tools/attention_distance.py \
  "$SDAE" "$(ckpt $W/sdae)" "$SDAE" "$(ckpt $W/sdae)" \
  "$RCMAE" "$(ckpt $W/rcmae)" "$MAE" "$(ckpt $W/mae)" \
  --encoder student teacher teacher auto \
  --labels "SdAE student" "SdAE teacher" "RC-MAE teacher" MAE \
  --out-dir "$OUT/attention_distance"
for pair in "$SDAE $W/sdae" "$RCMAE $W/rcmae" "$MAE $W/mae"; do
  set -- $pair
  "$PY" tools/analysis_tools/vis_masking.py "$1" "$(ckpt "$2")" --num-images 2 --out-dir "$OUT/masking"
done
echo "[vis demo] pictures and numbers in $OUT/"
