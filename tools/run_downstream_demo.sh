#!/usr/bin/env bash
# One command for the whole transfer path on the CPU: set up the environment,
# write the tiny COCO / ADE20K / ImageNet folders (data/tiny), pre-train the
# SdAE demo (work_dirs/demo, reused when it is there), export its student
# encoder, then run every tiny downstream protocol (fine-tuning, linear
# probing, Mask R-CNN, UperNet) from that encoder and print their metrics.
# Extra arguments go to every downstream tools/train.py call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY=.venv/bin/python
BENCH=configs/sdae/benchmarks
ENCODER=work_dirs/demo/vit-tiny-p8_student.pth

"$PY" tools/dataset_converters/make_tiny_data.py --out data/tiny
if [ ! -f work_dirs/demo/last_checkpoint ]; then
  "$PY" tools/train.py configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py \
    --work-dir work_dirs/demo
fi
PRETRAINED="$(cat work_dirs/demo/last_checkpoint)"
"$PY" tools/model_converters/sdae_to_vit.py "$PRETRAINED" "$ENCODER" \
  --encoder student --config "$BENCH/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py" --force

CONFIGS=(
  vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px
  vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px
  mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px
  upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px
)
for name in "${CONFIGS[@]}"; do
  "$PY" tools/train.py "$BENCH/$name.py" --work-dir "work_dirs/downstream/$name" \
    --cfg-options model.backbone.init_cfg.checkpoint="$ENCODER" "$@"
done

echo
echo '[downstream demo] last evaluation of each protocol (tiny data, a few CPU iterations: plumbing, not paper numbers)'
"$PY" tools/analysis_tools/plot_curves.py "${CONFIGS[@]/#/work_dirs/downstream/}" \
  --labels "${CONFIGS[@]}" --last accuracy/top1 coco/bbox_mAP coco/segm_mAP mIoU
