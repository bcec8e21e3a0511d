# CPU smoke run: a tiny SdAE (ViT 96 wide, 4 blocks, 8 px patches on 64 px
# images: 64 patches, 16 visible, 48 masked = 3 folds of 16) trained for 80
# iterations on the embedded procedural images. It keeps every piece of the
# real recipe (multi-fold teacher, Eq. 3 / Eq. 4, per-epoch EMA 0.96 -> 0.99,
# AdamW with warm-up + cosine) at a size that finishes in seconds on 2 cores;
# too short to learn anything measurable. The demo that learns, with this
# model and optimizer: sdae_vit-tiny-p8_1xb128-24e_shape-task-64px.py.
_base_ = 'sdae_vit-base-p16_8xb96-coslr-300e_in1k.py'

max_epochs = 10
warmup_epochs = 1
img_size = 64
patch_size = 8

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=96,
            num_layers=4,
            num_heads=3,
            feedforward_channels=384),
        img_size=img_size,
        patch_size=patch_size,
        drop_path_rate=0.1),
    neck=dict(
        num_patches=(img_size // patch_size)**2,
        patch_size=patch_size,
        embed_dim=96,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=4,
        predict_feature_dim=96))

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        data_root='',
        data_prefix='',
        num_images=256,
        image_size=96,
        num_classes=10,
        seed=0,
        pipeline=[
            dict(type='SafeLoadImageFromFile', on_error='skip'),
            dict(
                type='RandomResizedCrop',
                scale=img_size,
                crop_ratio_range=(0.2, 1.0),
                backend='pillow',
                interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackInputs'),
        ]))

optim_wrapper = dict(optimizer=dict(lr=1.5e-3))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=1e-5,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(interval=4),
    checkpoint=dict(interval=5, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=32)
# Watch representation quality while training: DINO's weighted kNN (k 20,
# T 0.07) on the held-out images of the learning benchmark's shape task
# (mmsdae/analysis/learning_signal.py: 5 outlines, colour and the rest
# random; 500 bank / 500 query), on the mean patch token, before training
# and every 5 epochs. The demo's own shape x colour classes are solved by
# colour, which a random ViT already sees.
shape_task = dict(type='ProceduralShapeTaskDataset', num_images=500)
knn_monitor = dict(
    type='KNNMonitorHook',
    interval=5,
    at_start=True,
    feature='mean',
    train_dataset=dict(shape_task, seed=101),
    val_dataset=dict(shape_task, seed=102))
custom_hooks = [
    dict(
        type='SdAETeacherEMAHook',
        momentum=0.96,
        end_momentum=0.99,
        update_interval='epoch'),
    dict(type='TrainSummaryHook'),
    knn_monitor,
]
