# ADE20K semantic segmentation, the SdAE supplementary Sec. 1 protocol (the
# CAE setting, CAE's upernet_cae_base_12_512_slide_160k_ade20k_pt_4e-4):
# UperNet on a ViT-B/16 with a relative position bias in every block (zero at
# the start) and the fixed sin-cos position table at the 32 x 32 grid, whose
# blocks 4, 6, 8 and 12 go through the deconvolution pyramid (mmseg's
# Feature2Pyramid: x4, x2, x1, x0.5 with SyncBN), 512 x 512 crops, AdamW lr
# 4e-4, layer-wise decay 0.65, weight decay 0.05, batch 16 (8 GPUs x 2),
# 160k iterations, single-scale sliding-window testing. Paper: 48.6 mIoU
# (ViT-B, 300-epoch SdAE, supplementary Table S-2). Every value and its
# source: configs/sdae/benchmarks/README.md.
#
# Start from an encoder exported by tools/model_converters/sdae_to_vit.py:
#   bash tools/dist_train.sh <this config> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/sdae_vit-b_student.pth
# The sin-cos table of a 224-px checkpoint is recomputed for the 32 x 32
# grid of 512-px crops (CAE); pos_embed_type='learned' resizes it instead.
_base_ = [
    'mmseg::_base_/models/upernet_mae.py',
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
        type='mmpretrain.DenseViT',
        arch='base',
        img_size=crop_size,
        patch_size=16,
        drop_path_rate=0.1,
        out_indices=(3, 5, 7, 11),
        out_type='featmap',
        final_norm=False,
        pos_embed_type='sincos',
        rel_pos_bias='per_block',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        embed_dim=embed_dims,
        rescales=[4, 2, 1, 0.5],
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
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
warmup_iters = 1500  # CAE's config (the paper is silent)
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
