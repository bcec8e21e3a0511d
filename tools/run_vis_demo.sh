#!/usr/bin/env bash
# One command for the pictures in the README ("Seeing what the model
# learned", "Watching training"): set up the environment, pre-train MAE,
# SdAE, RC-MAE and Hybrid Distill from their CPU demo configs at the
# learning benchmark's `gpu` budget (tools/benchmark/learning_signal.py:
# 8192 shape-task images x 24 epochs, batch 128; the setting where every
# method's kNN curve rises; about 45 min on 2 CPU cores) into
# work_dirs/ls_cpu_gpu/, then draw from their final checkpoints:
#   the benchmark's table and kNN curves (learning_signal_gpu_budget/),
#   the training curves of the four runs, attention maps (SdAE vs MAE), the
#   10 % attention region of one query patch (RC-MAE, MAE, SdAE), average
#   attention distance (SdAE student, SdAE teacher, RC-MAE teacher, MAE),
#   the masking / decoder output of one batch for each method.
# Output: docs/figures/ (PNG + the JSON numbers behind each picture).
# SKIP_TRAIN=1 draws from the runs already in work_dirs/ls_cpu_gpu/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY=.venv/bin/python
OUT=${OUT:-docs/figures}
W=work_dirs/ls_cpu_gpu

if [ -z "${SKIP_TRAIN:-}" ]; then
  rm -rf "$W"
  "$PY" tools/benchmark/learning_signal.py --budget gpu --workers 1 \
    --methods MAE SdAE RC-MAE "Hybrid Distill" --work-dir "$W" \
    --out-dir "$OUT/learning_signal_gpu_budget"
fi
for run in mae sdae rc-mae hybrid_distill; do
  [ -f "$W/$run/last_checkpoint" ] || {
    echo "[vis demo] $W/$run has no checkpoint: run without SKIP_TRAIN." >&2
    exit 1; }
done
# each run's config as the runner dumped it and its final checkpoint,
# relative to the repository (paths land in the JSON)
cfg() { realpath --relative-to="$ROOT" "$(ls "$W/$1"/*.py)"; }
ckpt() { realpath --relative-to="$ROOT" "$(cat "$W/$1/last_checkpoint")"; }
SDAE="$(cfg sdae) $(ckpt sdae)"
RCMAE="$(cfg rc-mae) $(ckpt rc-mae)"
MAE="$(cfg mae) $(ckpt mae)"

mkdir -p "$OUT"
"$PY" tools/analysis_tools/plot_curves.py "$W/mae" "$W/sdae" "$W/rc-mae" \
  "$W/hybrid_distill" --labels MAE SdAE RC-MAE "Hybrid Distill" \
  --out "$OUT/training_curves.png"
"$PY" tools/analysis_tools/vis_attention.py $SDAE --compare $MAE \
  --labels SdAE MAE --out-dir "$OUT/attention_maps"
"$PY" tools/analysis_tools/vis_attention.py $RCMAE --compare $MAE \
  --compare $SDAE --labels RC-MAE MAE SdAE \
  --query 3 4 --out-dir "$OUT/query_regions"
"$PY" tools/analysis_tools/attention_distance.py $SDAE $SDAE $RCMAE $MAE \
  --encoder student teacher teacher auto \
  --labels "SdAE student" "SdAE teacher" "RC-MAE teacher" MAE \
  --out-dir "$OUT/attention_distance"
for run in "$SDAE" "$RCMAE" "$MAE"; do
  "$PY" tools/analysis_tools/vis_masking.py $run --num-images 2 \
    --out-dir "$OUT/masking"
done
echo "[vis demo] pictures and numbers in $OUT/"
