# COCO detection + instance segmentation, the SdAE supplementary Sec. 1
# protocol (the CAE setting, CAE's
# vit_base_giou_4conv1f_coco_maskrcnn_1x_cae_sincos_init0.1_lr00003):
# Mask R-CNN + FPN on a ViT-B/16 (fixed sin-cos position table at each
# input's grid, drop path 0.2) whose blocks 4, 6, 8 and 12 (indices 3, 5, 7,
# 11) feed a four-scale pyramid (strides 4/8/16/32: two deconvolutions, one
# deconvolution, identity, max-pooling; mmseg's Feature2Pyramid) in front of
# the FPN; a 4 conv + 1 fc box head with SyncBN regressing decoded boxes with
# GIoU loss (weight 10); training scales chosen at random between
# multi-scale 480-800 and DETR's crop branch; batch 32 (8 GPUs x 4), AdamW
# lr 3e-4, layer-wise decay 0.75, 1x schedule (12 epochs, lr x0.1 at epochs
# 9 and 11, 500 warm-up iterations), single-scale testing. Paper: 48.9 box
# AP / 43.0 mask AP (ViT-B, 300-epoch SdAE, supplementary Table S-2). Every
# value and its source: configs/sdae/benchmarks/README.md.
#
# Start from an encoder exported by tools/model_converters/sdae_to_vit.py:
#   bash tools/dist_train.sh <this config> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/sdae_vit-b_student.pth
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmsdae', 'mmpretrain.models', 'mmseg.models'],
    allow_failed_imports=False)

embed_dims = 768
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN on one process
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.DenseViT',
        arch='base',
        img_size=224,  # the checkpoint's grid; inputs may be any size
        patch_size=16,
        drop_path_rate=0.2,
        out_indices=(3, 5, 7, 11),
        out_type='featmap',
        final_norm=False,
        pos_embed_type='sincos',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=[
        dict(
            type='mmseg.Feature2Pyramid',
            embed_dim=embed_dims,
            rescales=[4, 2, 1, 0.5],
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[embed_dims] * 4,
            out_channels=256,
            num_outs=5),
    ],
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg,
            reg_decoded_bbox=True,
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))),
    train_cfg=dict(rpn_proposal=dict(max_per_img=2000)))

# Flip, then one of two branches at random (CAE, after DETR): short side one
# of 480, 512, ..., 800 (long <= 1333); or short side 400 / 500 / 600, a
# random 384-600 crop, then the same multi-scale resize.
multi_scale = dict(
    type='RandomChoiceResize',
    scales=[(1333, short) for short in range(480, 801, 32)],
    keep_ratio=True)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [multi_scale],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(1333, 400), (1333, 500), (1333, 600)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True),
                multi_scale,
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',  # add --amp on GPUs (AmpOptimWrapper)
    optimizer=dict(
        type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        flat_decay_mult=0.0,  # no decay for norms and biases (as MAE/CAE)
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
# 500 warm-up iterations from 0.001 x lr (CAE's config inherits mmdet's 1x
# schedule; the paper is silent). "lr x0.1 at epochs 9 and 11" = MultiStepLR
# milestones [9, 11] (after 9 and 11 finished epochs).
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[9, 11],
        gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
# Reproducible by default, as the mmsdae pre-training configs (mmdet's and
# mmseg's runtimes draw a random seed).
randomness = dict(seed=0, diff_rank_seed=True)
