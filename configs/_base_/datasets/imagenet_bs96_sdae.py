# ImageNet-style folder for SdAE pre-training (MAE augmentation: random
# resized crop 0.2-1.0, bicubic, flip). The dataset is ProceduralShapesDataset
# in folder mode: it reads data_root/data_prefix/<class>/<image>; set
# ann_file to use a list file instead of scanning. Leave data_root and
# data_prefix empty to train on the embedded procedural images instead.
# An unreadable image is skipped with a warning naming it, and counted
# (default_hooks.bad_images of the pre-training configs reports the count
# per epoch and stops past 1% bad); on_error='raise' stops at the first.
dataset_type = 'ProceduralShapesDataset'
data_root = 'data/imagenet/'

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='SafeLoadImageFromFile', on_error='skip'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=96,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        ann_file='',
        with_label=False,
        pipeline=train_pipeline))
