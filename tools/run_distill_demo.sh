#!/usr/bin/env bash
# One command for the distillation methods on the CPU, with tiny teachers
# trained here (nothing is downloaded):
#   G2SD   1. a 192-wide MAE demo (the full MAE teacher: encoder + decoder)
#          2. generic distillation into the 96-wide student, export it
#          3. three task teachers fine-tuned from the MAE demo (cls, det, seg)
#          4. specific distillation of the exported student for each task
#   Hybrid 5. T_m = the MAE demo of configs/rcmae, T_c = the tiny fine-tuned
#             classifier of tools/run_downstream_demo.sh; distil, export
# Steps whose checkpoint is already there are skipped; the tiny data goes to
# data/tiny. Ends with each run's last metrics. Extra arguments go to every
# tools/train.py call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY=.venv/bin/python
G2SD=configs/g2sd
SPECIFIC=configs/g2sd/specific
STUDENT=work_dirs/demo/g2sd_vit-tiny-p8_student.pth
HYBRID_STUDENT=work_dirs/demo/hybrid-distill_vit-tiny-p8_student.pth

# train CONFIG [CHECKPOINT]: train into work_dirs/<config name> unless
# CHECKPOINT (a file that run writes) is already there
train() {
  local config=$1 done_file=${2:-}
  if [ -n "$done_file" ] && [ -f "$done_file" ]; then
    echo "[distill demo] $done_file exists: skipping $config"
    return
  fi
  "$PY" tools/train.py "$config" "${EXTRA[@]}"
}
EXTRA=("$@")

"$PY" tools/dataset_converters/make_tiny_data.py --out data/tiny

# G2SD, generic distillation (G2SD Sec. 3.1; teacher = full MAE)
train "$G2SD/mae_vit-d192-p8_1xb32-10e_procedural-64px.py" \
  work_dirs/mae_vit-d192-p8_1xb32-10e_procedural-64px/epoch_10.pth
train "$G2SD/g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py"
"$PY" tools/model_converters/sdae_to_vit.py \
  "$(cat work_dirs/g2sd_vit-tiny-p8_1xb32-10e_procedural-64px/last_checkpoint)" \
  "$STUDENT" --config configs/sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py \
  --force

# G2SD, specific distillation: a fine-tuned teacher per task, then the student
train "$SPECIFIC/teachers/vit-d192-p8_1xb16-coslr-2e_tiny-in1k-64px.py" \
  work_dirs/vit-d192-p8_1xb16-coslr-2e_tiny-in1k-64px/epoch_2.pth
train "$SPECIFIC/teachers/mask-rcnn_vit-d192-p8_fpn_1xb2-1e_tiny-coco-128px.py" \
  work_dirs/mask-rcnn_vit-d192-p8_fpn_1xb2-1e_tiny-coco-128px/epoch_1.pth
train "$SPECIFIC/teachers/upernet_vit-d192-p8_1xb2-8i_tiny-ade20k-64px.py" \
  work_dirs/upernet_vit-d192-p8_1xb2-8i_tiny-ade20k-64px/iter_8.pth
SPECIFIC_CONFIGS=(
  vit-tiny-p8-distilled_1xb16-coslr-2e_tiny-in1k-64px
  mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px
  upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px
)
for name in "${SPECIFIC_CONFIGS[@]}"; do
  "$PY" tools/train.py "$SPECIFIC/$name.py" --work-dir "work_dirs/g2sd_specific/$name" \
    --cfg-options model.backbone.init_cfg.checkpoint="$STUDENT" "${EXTRA[@]}"
done

# Hybrid Distill: T_m = the MAE demo, T_c = the tiny fine-tuned classifier
train configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py \
  work_dirs/mae_vit-tiny-p8_1xb32-10e_procedural-64px/epoch_10.pth
if [ ! -f work_dirs/downstream/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px/epoch_2.pth ]; then
  bash tools/run_downstream_demo.sh  # SdAE demo -> export -> tiny classifier
fi
train configs/hybrid_distill/hybrid-distill_vit-tiny-p8_1xb32-10e_procedural-64px.py
"$PY" tools/model_converters/sdae_to_vit.py \
  "$(cat work_dirs/hybrid-distill_vit-tiny-p8_1xb32-10e_procedural-64px/last_checkpoint)" \
  "$HYBRID_STUDENT" --config configs/sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py \
  --force

RUNS=(g2sd_vit-tiny-p8_1xb32-10e_procedural-64px
  "${SPECIFIC_CONFIGS[@]/#/g2sd_specific/}"
  hybrid-distill_vit-tiny-p8_1xb32-10e_procedural-64px)
echo
echo '[distill demo] last logged values of each run (tiny data and teachers, a few CPU iterations: plumbing, not paper numbers)'
"$PY" tools/analysis_tools/plot_curves.py "${RUNS[@]/#/work_dirs/}" \
  --labels "${RUNS[@]}" --last loss accuracy/top1 coco/bbox_mAP coco/segm_mAP mIoU
