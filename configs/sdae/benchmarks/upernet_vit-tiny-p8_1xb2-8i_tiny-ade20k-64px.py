# CPU-sized variant of the ADE20K UperNet protocol: the demo's 96-wide,
# 4-block ViT (8 px patches; per-block relative position bias, sin-cos
# positions; all four blocks through the deconvolution pyramid, rescaled
# x2 / x1 / x0.5 / x0.25 to strides 4/8/16/32), UPerHead + FCN auxiliary
# head, layer-wise decay, 64 x 64 crops, 8 iterations (a plumbing run;
# the learning run is upernet_vit-tiny-p8_1xb2-160i_tiny-ade20k-64px.py) on the tiny
# ADE20K-layout folder of tools/dataset_converters/make_tiny_data.py
# (150 classes, label 0 ignored), evaluated by mmseg's IoUMetric with
# single-scale sliding windows. Point data_root at
# data/ade/ADEChallengeData2016 for real ADE20K.
_base_ = 'upernet_vit-base-p16_8xb2-160k_ade20k-512x512.py'

data_root = 'data/tiny/ade/ADEChallengeData2016'
crop_size = (64, 64)
embed_dims = 96
channels = 64
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=3,
            feedforward_channels=384),
        img_size=crop_size,
        patch_size=8,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(checkpoint='work_dirs/demo/vit-tiny-p8_student.pth')),
    neck=dict(
        embed_dim=embed_dims, rescales=[2, 1, 0.5, 0.25], norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[embed_dims] * 4, channels=channels, norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=embed_dims, channels=channels, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(43, 43)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(256, 64),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 8
warmup_iters = 2
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0,
        end=warmup_iters),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=warmup_iters,
        end=max_iters,
        by_epoch=False),
]
auto_scale_lr = dict(base_batch_size=2)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_iters),
    visualization=dict(draw=False))
