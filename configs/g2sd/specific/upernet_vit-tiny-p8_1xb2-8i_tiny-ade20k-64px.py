# CPU-sized variant of upernet_vit-small-p16_8xb4-160k_ade20k-512x512.py:
# the tiny ADE20K UperNet protocol of configs/sdae/benchmarks/
# upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py (64 x 64 crops, batch 2,
# 8 iterations) with G2SD's channel-wise distillation of the decode-head
# logits (temperature 1, weight 3): student = the 96 x 4 demo ViT from the
# G2SD demo, teacher = the same segmentor on the 192 x 4 demo MAE,
# fine-tuned with teachers/upernet_vit-d192-p8_1xb2-8i_tiny-ade20k-64px.py.
_base_ = ('../../sdae/benchmarks/'
          'upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py')

custom_imports = dict(
    imports=['mmsdae', 'mmsdae.models.segmentors', 'mmpretrain.models'],
    allow_failed_imports=False)

teacher_ckpt = ('work_dirs/upernet_vit-d192-p8_1xb2-8i_tiny-ade20k-64px/'
                'iter_8.pth')
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
    neck=dict(_student['neck'], embed_dim=teacher_dims),
    decode_head=dict(
        _student['decode_head'], in_channels=[teacher_dims] * 4),
    auxiliary_head=dict(
        _student['auxiliary_head'], in_channels=teacher_dims))
model = dict(
    type='G2SDEncoderDecoder',
    backbone=dict(
        init_cfg=dict(
            checkpoint='work_dirs/demo/g2sd_vit-tiny-p8_student.pth')),
    teacher=dict(
        type='FrozenTeacher', checkpoint=teacher_ckpt, model=teacher_model),
    cwd_tau=1.0,
    cwd_weight=3.0)
