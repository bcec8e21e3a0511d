# G2SD specific distillation for COCO in the ViTDet framework, the paper's
# own detector (supplementary Sec. 1.2 and Table 3; released G2SD_det_dis
# projects/ViTDet/configs/COCO/distillation/mask_rcnn_vitdet_b2s_100ep.py):
# the ViTDet Mask R-CNN on the ViT-S/16 from the generic stage
# (../benchmarks/vitdet_mask-rcnn_vit-small-p16_lsj-8xb8-100e_coco.py)
# trained with L = L_GT + r (0.001 L_FPN + 0.1 L_head), r = min(iter / 500,
# 1) from a frozen ViTDet ViT-B Mask R-CNN teacher
# (../benchmarks/vitdet_mask-rcnn_vit-base-p16_lsj-8xb8-100e_coco.py fine-tuned
# from an MAE ViT-B; its checkpoint is the teacher file). Same loss and
# detector class as mask-rcnn_vit-small-p16_fpn_lsj-8xb8-100e_coco.py (the
# MIMDet-pyramid variant); both pyramids have 5 levels of 256 channels.
# Paper (Table 3, G2SD-S 300e): 50.6 box AP / 44.8 mask AP (49.9 / 44.5
# without specific distillation).
#
#   bash tools/dist_train.sh <this config> 8 --amp --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/g2sd_vit-s_student.pth \
#       model.teacher.checkpoint=<ViTDet ViT-B Mask R-CNN checkpoint>
_base_ = '../benchmarks/vitdet_mask-rcnn_vit-base-p16_lsj-8xb8-100e_coco.py'

teacher_ckpt = 'work_dirs/teachers/vitdet_mask-rcnn_vit-base-p16_coco.pth'
embed_dims = 384
# the ViT-B ViTDet Mask R-CNN as fine-tuned (weights from teacher_ckpt)
_teacher = dict(
    _base_.model, backbone=dict(_base_.model.backbone, init_cfg=None))
model = dict(
    type='G2SDMaskRCNN',
    backbone=dict(arch='deit-small'),  # the ViT-S benchmark config's student
    neck=dict(
        backbone_channel=embed_dims,
        in_channels=[embed_dims // 4, embed_dims // 2, embed_dims,
                     embed_dims]),
    teacher=dict(type='FrozenTeacher', checkpoint=teacher_ckpt,
                 model=_teacher),
    fpn_weight=0.001,
    head_weight=0.1,
    warmup_iters=500)
