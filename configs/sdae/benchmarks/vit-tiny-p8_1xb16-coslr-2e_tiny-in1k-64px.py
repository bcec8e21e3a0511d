# CPU-sized variant of the ImageNet fine-tuning protocol: the 96-wide,
# 4-block ViT with 8 px patches of the SdAE demo
# (configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py) fine-tuned
# two epochs on the tiny ImageNet-layout folder that
# tools/dataset_converters/make_tiny_data.py writes (64 px images, 10 of the
# 1000 labels used). Everything else (layer decay, mixup/cutmix, label
# smoothing, RandAugment, random erasing, mean-pooled head, Accuracy) is the
# full recipe; point data_root at data/imagenet for the real thing.
_base_ = 'vit-base-p16_8xb256-coslr-100e_in1k.py'

img_size = 64
data_root = 'data/tiny/imagenet'
embed_dims = 96
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=3,
            feedforward_channels=384),
        img_size=img_size,
        patch_size=8,
        init_cfg=dict(checkpoint='work_dirs/demo/vit-tiny-p8_student.pth')),
    head=dict(in_channels=embed_dims))

bgr_mean = _base_.bgr_mean
bgr_std = _base_.bgr_std
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=img_size * 256 // 224,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

base_lr = 5e-4
batch_size = 16
optim_wrapper = dict(optimizer=dict(lr=base_lr * batch_size / 256))

max_epochs = 2
warmup_epochs = 1
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-2,
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
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
