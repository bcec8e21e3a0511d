# CPU-sized variant of mask-rcnn_vit-small-p16_fpn_lsj-8xb8-100e_coco.py:
# the tiny COCO Mask R-CNN protocol of configs/sdae/benchmarks/
# mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py (128 px, batch 2,
# one epoch) with G2SD's detection distillation: student = the 96 x 4 demo
# ViT from the G2SD demo, teacher = the same detector on the 192 x 4 demo
# MAE, fine-tuned with teachers/mask-rcnn_vit-d192-p8_fpn_1xb2-1e_tiny-
# coco-128px.py. Same loss as the full config (alpha 0.001 FPN imitation
# weighted by the teacher's objectness through 3x3 adapters, beta 0.1
# objectness BCE); the distillation warm-up is shortened to the 4
# iterations of the run.
_base_ = ('../../sdae/benchmarks/'
          'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py')

custom_imports = dict(
    imports=[
        'mmsdae', 'mmsdae.models.detectors', 'mmpretrain.models',
        'mmseg.models'
    ],
    allow_failed_imports=False)

teacher_ckpt = ('work_dirs/mask-rcnn_vit-d192-p8_fpn_1xb2-1e_tiny-coco-128px/'
                'epoch_1.pth')
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
    neck=[
        dict(_student['neck'][0], embed_dim=teacher_dims),
        dict(_student['neck'][1], in_channels=[teacher_dims] * 4),
    ])
model = dict(
    type='G2SDMaskRCNN',
    backbone=dict(
        init_cfg=dict(
            checkpoint='work_dirs/demo/g2sd_vit-tiny-p8_student.pth')),
    teacher=dict(
        type='FrozenTeacher', checkpoint=teacher_ckpt, model=teacher_model),
    fpn_weight=0.001,
    head_weight=0.1,
    warmup_iters=4)
