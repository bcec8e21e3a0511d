# ImageNet-1k end-to-end fine-tuning of an SdAE ViT-B/16, the SdAE
# supplementary Sec. 1 protocol ("almost the same as MAE"): batch 2048
# (8 GPUs x 256, or accumulate), 100 epochs, base lr 5e-4 per 256 images
# (4e-3 at 2048), layer-wise lr decay 0.65, drop path 0.1, 10 warm-up
# epochs, weight decay 0.05, AdamW; MAE's augmentation (RandAugment
# m9-mstd0.5, mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing
# 0.25) and MAE's fine-tuning head (global average pooling of the patch
# tokens + LayerNorm + linear). Paper: 84.1 top-1 (300-epoch SdAE).
#
#   bash tools/dist_train.sh <this config> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/sdae_vit-b_student.pth
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
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
        drop_path_rate=0.1,
        out_type='avg_featmap',  # MAE fine-tuning: global pool + fc_norm
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=768,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

train_dataloader = dict(batch_size=256)
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader

base_lr = 5e-4  # per 256 images
batch_size = 2048
optim_wrapper = dict(
    type='OptimWrapper',  # add --amp on GPUs (AmpOptimWrapper)
    optimizer=dict(
        type='AdamW',
        lr=base_lr * batch_size / 256,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,  # no decay for norms and biases (as MAE)
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))

max_epochs = 100
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
        eta_min=1e-6,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
