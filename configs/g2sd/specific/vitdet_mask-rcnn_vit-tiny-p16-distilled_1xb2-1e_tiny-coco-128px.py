# CPU-sized variant of vitdet_mask-rcnn_vit-small-p16-distilled_lsj-8xb8-
# 100e_coco.py:
# the tiny ViTDet Mask R-CNN of ../benchmarks/vitdet_mask-rcnn_vit-tiny-p16_
# 1xb2-1e_tiny-coco-128px.py (96 x 4 student) distilled from the same
# detector on a 192 x 4 ViT (the teacher file: teachers/vitdet_mask-rcnn_
# vit-d192-p16_1xb2-1e_tiny-coco-128px.py trained one epoch); the same
# loss, the warm-up shortened to the 4 iterations of the run.
_base_ = ('../benchmarks/'
          'vitdet_mask-rcnn_vit-tiny-p16_1xb2-1e_tiny-coco-128px.py')

teacher_ckpt = ('work_dirs/vitdet_mask-rcnn_vit-d192-p16_1xb2-1e_tiny-coco-'
                '128px/epoch_1.pth')
teacher_dims = 192
_student = _base_.model
teacher_model = dict(
    _student,
    backbone=dict(
        _student['backbone'],
        arch=dict(
            embed_dims=teacher_dims,
            num_layers=4,
            num_heads=6,
            feedforward_channels=768),
        init_cfg=None),
    neck=dict(
        _student['neck'],
        backbone_channel=teacher_dims,
        in_channels=[teacher_dims // 4, teacher_dims // 2, teacher_dims,
                     teacher_dims]))
model = dict(
    type='G2SDMaskRCNN',
    teacher=dict(
        type='FrozenTeacher', checkpoint=teacher_ckpt, model=teacher_model),
    fpn_weight=0.001,
    head_weight=0.1,
    warmup_iters=4)
