# COCO Mask R-CNN, the RC-MAE protocol (rcmae_main.txt App. E.4: Li et
# al. 2021's benchmarking recipe as the MIMDet code RC-MAE cites implements
# it, configs/benchmarking/benchmarking_mask_rcnn_base_FPN_100ep_LSJ_mae.py):
# a ViT-B/16 without class token, fixed sin-cos positions, 16 x 16 windowed
# attention except in the last block of each quarter (blocks 3, 6, 9, 12,
# global) with one shared relative position bias for the windowed blocks and
# one for the global blocks (zero at the start); those four blocks feed the
# pyramid (GroupNorm in the stride-4 deconvolutions) and an FPN with SyncBN;
# a 2-conv RPN head, 4 conv + 1 fc box head and 4-conv mask head with
# SyncBN; 100 epochs of large-scale jitter (1024 x 1024, scale 0.1-2.0),
# batch 16 (8 GPUs x 2), AdamW lr 4e-5, weight decay 0.1 (none on norms,
# positions and relative position tables), drop path 0.1, linear warm-up
# over 0.25 % of the iterations, then a half-period cosine. Paper (Table 5,
# ViT-B): RC-MAE 51.0 box AP / 45.4 mask AP, MAE 50.3 / 44.9. Every value and
# its source: configs/sdae/benchmarks/README.md.
_base_ = 'mask-rcnn_vit-base-p16_fpn_8xb4-1x_coco.py'

image_size = (1024, 1024)
embed_dims = 768
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size)]),
    backbone=dict(
        img_size=image_size,
        drop_path_rate=0.1,
        out_indices=(2, 5, 8, 11),
        with_cls_token=False,
        rel_pos_bias='shared',
        window_size=16),
    neck=[
        dict(
            type='mmseg.Feature2Pyramid',
            embed_dim=embed_dims,
            rescales=[4, 2, 1, 0.5],
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        dict(
            type='FPN',
            in_channels=[embed_dims] * 4,
            out_channels=256,
            num_outs=5,
            norm_cfg=norm_cfg),
    ],
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            reg_decoded_bbox=False,
            loss_bbox=dict(_delete_=True, type='L1Loss', loss_weight=1.0)),
        mask_head=dict(norm_cfg=norm_cfg)),
    train_cfg=dict(rpn_proposal=dict(max_per_img=1000)))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResize',
        scale=image_size,
        ratio_range=(0.1, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute_range',
        crop_size=image_size,
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=4e-5, weight_decay=0.1),
    paramwise_cfg=dict(
        layer_decay_rate=1.0,
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.0),
        }))

max_epochs = 100
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    # 0.25 % of the iterations (MIMDet: warmup_length=0.25 / 100) = a
    # quarter of the first of 100 epochs, whatever the batch.
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=True,
        begin=0,
        end=max_epochs * 0.25 / 100,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
