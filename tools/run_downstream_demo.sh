#!/usr/bin/env bash
# One command for the whole transfer path on the CPU: set up the environment,
# write the tiny COCO / ADE20K / ImageNet folders (data/tiny, and
# data/tiny-learn with 48 + 16 dense images), pre-train the SdAE demo
# (work_dirs/demo, reused when it is there), export its student encoder,
# then run the tiny fine-tuning and linear probing from it, and the tiny
# Mask R-CNN and UperNet learning runs from it and from a random encoder,
# and print their metrics side by side.
# Extra arguments go to every downstream tools/train.py call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY=.venv/bin/python
BENCH=configs/sdae/benchmarks
ENCODER=work_dirs/demo/vit-tiny-p8_student.pth

"$PY" tools/dataset_converters/make_tiny_data.py --out data/tiny
"$PY" tools/dataset_converters/make_tiny_data.py --out data/tiny-learn \
  --num-train 48 --num-val 16
if [ ! -f work_dirs/demo/last_checkpoint ]; then
  bash tools/run_demo.sh
fi
PRETRAINED="$(cat work_dirs/demo/last_checkpoint)"
"$PY" tools/model_converters/sdae_to_vit.py "$PRETRAINED" "$ENCODER" \
  --encoder student --config "$BENCH/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py" --force

CONFIGS=(
  vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px
  vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px
  mask-rcnn_vit-tiny-p8_fpn_1xb2-12e_tiny-coco-128px
  upernet_vit-tiny-p8_1xb2-160i_tiny-ade20k-64px
)
DENSE=(mask-rcnn_vit-tiny-p8_fpn_1xb2-12e_tiny-coco-128px upernet_vit-tiny-p8_1xb2-160i_tiny-ade20k-64px)
RUNS=() LABELS=()
for name in "${CONFIGS[@]}"; do
  "$PY" tools/train.py "$BENCH/$name.py" --work-dir "work_dirs/downstream/$name" \
    --cfg-options model.backbone.init_cfg.checkpoint="$ENCODER" "$@"
  RUNS+=("work_dirs/downstream/$name") LABELS+=("$name (SdAE demo)")
done
for name in "${DENSE[@]}"; do  # the same runs from a random encoder
  "$PY" tools/train.py "$BENCH/$name.py" --work-dir "work_dirs/downstream/$name-random" \
    --cfg-options model.backbone.init_cfg=None "$@"
  RUNS+=("work_dirs/downstream/$name-random") LABELS+=("$name (random)")
done

echo
echo '[downstream demo] last evaluation of each run (tiny data, CPU-sized runs: not paper numbers)'
"$PY" tools/analysis_tools/plot_curves.py "${RUNS[@]}" --labels "${LABELS[@]}" \
  --last accuracy/top1 coco/bbox_mAP coco/bbox_mAP_50 coco/segm_mAP mIoU
