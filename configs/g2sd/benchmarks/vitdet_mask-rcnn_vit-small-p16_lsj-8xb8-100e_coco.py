# The ViTDet Mask R-CNN of vitdet_mask-rcnn_vit-base-p16_lsj-8xb8-100e_
# coco.py on a ViT-S/16 (384 wide, 6 heads, 12 blocks: the same windows,
# global blocks and pyramid), fine-tuned from the G2SD generic student
# without specific distillation (G2SD supplementary Table 3, "G2SD-S (w/o
# S.D, 300e)": 49.9 box AP / 44.5 mask AP; with it, 50.6 / 44.8:
# ../specific/vitdet_mask-rcnn_vit-small-p16-distilled_lsj-8xb8-100e_coco.py).
# Batch 64, lr 1e-4, drop path 0.1 (supplementary Sec. 1.2).
#
#   bash tools/dist_train.sh <this config> 8 --amp --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/g2sd_vit-s_student.pth
_base_ = 'vitdet_mask-rcnn_vit-base-p16_lsj-8xb8-100e_coco.py'

embed_dims = 384
model = dict(
    backbone=dict(arch='deit-small'),
    neck=dict(
        backbone_channel=embed_dims,
        in_channels=[embed_dims // 4, embed_dims // 2, embed_dims,
                     embed_dims]))
