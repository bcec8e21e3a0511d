# CPU-sized variant of the COCO Mask R-CNN protocol (CAE setting): the
# demo's 96-wide, 4-block ViT (8 px patches, sin-cos positions; all four
# blocks feed the pyramid, rescaled x2 / x1 / x0.5 / x0.25 to strides
# 4/8/16/32) with the same FPN, RPN and RoI heads at 64 channels,
# layer-wise decay and the augmentation scaled to 128 px; one epoch (a
# plumbing run; the learning run is
# mask-rcnn_vit-tiny-p8_fpn_1xb2-12e_tiny-coco-128px.py) on the
# tiny COCO-layout folder of tools/dataset_converters/make_tiny_data.py
# (128 px images, 80-class COCO categories), evaluated by mmdet's
# CocoMetric (bbox + segm, pycocotools). Point data_root at data/coco/ for
# real COCO.
_base_ = 'mask-rcnn_vit-base-p16_fpn_8xb4-1x_coco.py'

data_root = 'data/tiny/coco/'
embed_dims = 96
channels = 64
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=3,
            feedforward_channels=384),
        img_size=64,
        patch_size=8,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(checkpoint='work_dirs/demo/vit-tiny-p8_student.pth')),
    neck=[
        dict(
            type='mmseg.Feature2Pyramid',
            embed_dim=embed_dims,
            rescales=[2, 1, 0.5, 0.25],
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[embed_dims] * 4,
            out_channels=channels,
            num_outs=5),
    ],
    # The same heads, 4x narrower (64 channels, 256-wide fc), sampling 128
    # RoIs per image: the RoI convolutions dominate a CPU step otherwise.
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels)),
    # Fewer proposals for 128 px images; and since a few CPU iterations
    # leave every class score low, keep all boxes so CocoMetric has
    # predictions to score (the full config keeps score_thr 0.05).
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=250),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(score_thr=0.0, max_per_img=30)))

# The full config's augmentation scaled by 128 / 800: flip, then either
# short side 96-128 (long side <= 213) or short side 64 / 80 / 96, a
# random 61-96 crop, then short side 96-128.
multi_scale = dict(
    type='RandomChoiceResize',
    scales=[(213, short) for short in (96, 104, 112, 120, 128)],
    keep_ratio=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [multi_scale],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(213, 64), (213, 80), (213, 96)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(61, 96),
                    allow_negative_crop=True),
                multi_scale,
            ],
        ]),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(213, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
# Built from data_root when the config is read: when overriding the data
# root with --cfg-options, override val_evaluator.ann_file as well.
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-4))
max_epochs = 1
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[1],
        gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=2)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=1),
    visualization=dict(draw=False))
