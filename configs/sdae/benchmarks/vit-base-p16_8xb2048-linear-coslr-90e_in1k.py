# ImageNet-1k linear probing of a frozen SdAE ViT-B/16, MAE's protocol
# (MAE appendix A.2, followed by the SdAE release): class token after the
# encoder's final LayerNorm, BatchNorm without affine parameters before the
# linear head, LARS (momentum 0.9, no weight decay), base lr 0.1 per 256
# images (6.4 at batch 16384 = 8 GPUs x 2048), 90 epochs with 10 warm-up
# epochs and cosine decay, RandomResizedCrop + flip only. Paper: 64.9 top-1.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../../_base_/default_runtime.py',
]

num_classes = 1000
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        frozen_stages=12,  # patch embedding, all 12 blocks, final norm
        # (set it to the depth when changing arch: 24 for ViT-L)
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=768, affine=False),
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=num_classes,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=2048, drop_last=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256, drop_last=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

base_lr = 0.1  # per 256 images
batch_size = 16384
optim_wrapper = dict(
    type='OptimWrapper',  # add --amp on GPUs (AmpOptimWrapper)
    optimizer=dict(
        type='LARS',
        lr=base_lr * batch_size / 256,
        weight_decay=0.0,
        momentum=0.9),
    # MAE's LARS applies no trust ratio to 1-D parameters (the head bias).
    paramwise_cfg=dict(custom_keys={'.bias': dict(lars_exclude=True)}))

max_epochs = 90
warmup_epochs = 10
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
