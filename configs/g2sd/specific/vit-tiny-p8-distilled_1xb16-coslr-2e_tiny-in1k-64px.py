# CPU-sized variant of vit-small-p16-distilled_8xb128-coslr-200e_in1k.py
# on the tiny ImageNet-layout folder of
# tools/dataset_converters/make_tiny_data.py (64 px, batch 16, 2 epochs;
# the pipeline of configs/sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-
# in1k-64px.py). Student: the 96 x 4 demo ViT (8 px patches) of the G2SD
# demo (configs/g2sd/g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py) with a
# distillation token. Teacher: the 192 x 4 demo MAE fine-tuned with
# teachers/vit-d192-p8_1xb16-coslr-2e_tiny-in1k-64px.py (mmpretrain
# layout: mean-pooled backbone + LinearClsHead). Everything else as the
# full config (hard distillation 1/2 + 1/2, layer decay 0.75, drop path 0,
# mixup / cutmix, label smoothing, RandAugment).
_base_ = '../../sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py'

img_size = 64
teacher_ckpt = ('work_dirs/vit-d192-p8_1xb16-coslr-2e_tiny-in1k-64px/'
                'epoch_2.pth')
num_classes = 1000
model = dict(
    _delete_=True,
    type='DistillImageClassifier',
    backbone=dict(
        type='DistilledViT',
        arch=dict(
            embed_dims=96,
            num_layers=4,
            num_heads=3,
            feedforward_channels=384),
        img_size=img_size,
        patch_size=8,
        drop_path_rate=0.0,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/demo/g2sd_vit-tiny-p8_student.pth',
            prefix='backbone.')),
    neck=None,
    head=dict(
        type='DistillTokenClsHead',
        num_classes=num_classes,
        in_channels=96,
        distill_weight=0.5,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    teacher=dict(
        type='FrozenTeacher',
        checkpoint=teacher_ckpt,
        backbone=dict(
            type='VisionTransformer',
            arch=dict(
                embed_dims=192,
                num_layers=4,
                num_heads=6,
                feedforward_channels=768),
            img_size=img_size,
            patch_size=8,
            out_type='avg_featmap',
            final_norm=False),
        head=dict(
            type='LinearClsHead', num_classes=num_classes, in_channels=192)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

optim_wrapper = dict(
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.dist_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))
