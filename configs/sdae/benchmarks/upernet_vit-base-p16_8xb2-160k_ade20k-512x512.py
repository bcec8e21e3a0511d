# ADE20K semantic segmentation, the SdAE supplementary Sec. 1 protocol (the
# CAE setting): UperNet on a ViT-B/16 whose blocks 4, 6, 8 and 12 go through
# a multi-level neck (mmseg's MultiLevelNeck: rescale x4, x2, x1, x0.5 to
# strides 4/8/16/32), 512 x 512 crops, AdamW lr 4e-4, layer-wise decay 0.65,
# weight decay 0.05, batch 16 (8 GPUs x 2), 160k iterations, single-scale
# testing. Paper: 48.6 mIoU (ViT-B, 300-epoch SdAE, supplementary
# Table S-2).
#
# Start from an encoder exported by tools/model_converters/sdae_to_vit.py:
#   bash tools/dist_train.sh <this config> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/sdae_vit-b_student.pth
# The 14 x 14 position embeddings of a 224-px checkpoint are resized to
# the 32 x 32 grid of 512-px crops when the backbone loads them (or once, in
# the converter, with --interpolate-pos-embed).
_base_ = [
    'mmseg::_base_/models/upernet_vit-b16_ln_mln.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(
    imports=['mmsdae', 'mmpretrain.models'], allow_failed_imports=False)

crop_size = (512, 512)
embed_dims = 768
num_classes = 150
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='base',
        img_size=crop_size,
        patch_size=16,
        drop_path_rate=0.1,
        out_indices=(3, 5, 7, 11),
        out_type='featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        in_channels=[embed_dims] * 4,
        out_channels=embed_dims,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        in_channels=[embed_dims] * 4,
        channels=embed_dims,
        num_classes=num_classes),
    auxiliary_head=dict(
        in_channels=embed_dims, in_index=2, num_classes=num_classes),
    # Single scale; 512 x 512 windows slid over the resized image.
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

train_dataloader = dict(batch_size=2, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',  # add --amp on GPUs (AmpOptimWrapper)
    optimizer=dict(
        type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,  # no decay for norms and biases (as MAE/CAE)
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))

max_iters = 160000
warmup_iters = 1500  # not in the paper: mmseg's MAE / BEiT UperNet setting
train_cfg = dict(max_iters=max_iters, val_interval=16000)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=warmup_iters),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=warmup_iters,
        end=max_iters,
        by_epoch=False),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
# Reproducible by default, as the mmsdae pre-training configs (mmdet's and
# mmseg's runtimes draw a random seed).
randomness = dict(seed=0, diff_rank_seed=True)
