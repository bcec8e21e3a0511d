# Pipeline check of the tiny Mask R-CNN (not a recipe): the learning run's
# data (data/tiny-learn), augmentation, CAE-setting heads (4conv + 1fc with
# BN, GIoU on decoded boxes) and COCO evaluator, with a ResNet-18 trained
# from scratch in place of the ViT. The tiny ViT does not learn detection
# within CPU minutes (README, "Downstream transfer"); this run does (12
# epochs, 288 iterations, 2.5-3.5 minutes), so a slow test can catch a
# broken label mapping, head or evaluator that the ViT runs cannot.
_base_ = '../mask-rcnn_vit-tiny-p8_fpn_1xb2-6e_tiny-coco-128px.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels=_base_.channels,  # the heads' width
        num_outs=5))

# plain AdamW: layer decay is a ViT rule
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[10],
        gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
