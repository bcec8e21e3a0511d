# CPU smoke run of RC-MAE (the demo that learns:
# rcmae_vit-tiny-p8_1xb128-24e_shape-task-64px.py): the SdAE smoke run's
# data, optimizer and schedule (10 epochs of 256 procedural 64 px images,
# batch 32) with the RC-MAE model
# at the same size (ViT 96 wide, 4 blocks, 8 px patches; decoder 64 x 2
# predicting pixels), Eq. 6 loss, and the teacher (encoder + decoder)
# updated after every iteration. The momentum ramp starts at 0.99 instead
# of RC-MAE's 0.996: over the demo's 80 iterations 0.996 would leave the
# teacher near its initial weights.
_base_ = '../sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py'

model = dict(
    _delete_=True,
    type='RCMAE',
    backbone=dict(
        type='SdAEViT',
        arch=dict(
            embed_dims=96,
            num_layers=4,
            num_heads=3,
            feedforward_channels=384),
        img_size=64,
        patch_size=8,
        mask_ratio=0.75),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=64,
        patch_size=8,
        in_chans=3,
        embed_dim=96,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=4,
        mlp_ratio=4.),
    head=dict(
        type='RCMAEHead',
        norm_pix=True,
        patch_size=8,
        consistency_weight=1.0,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    teacher_mask='same',
    feature_encoder='teacher',
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
custom_hooks = [
    dict(
        type='TeacherEMAHook',
        momentum=0.99,
        end_momentum=1.0,
        update_interval='iter',
        schedule='iter'),
    dict(type='TrainSummaryHook'),
    {{_base_.knn_monitor}},
]
