# CPU-sized variant of vit-base-p16_8xb96-coslr-360e_inat2019.py: the
# demo's 96-wide, 4-block ViT with 8 px patches on a tiny iNaturalist
# 2019-layout folder (train_val2019/ + train2019.json / val2019.json; the
# tests write one from the tiny ImageNet folder of
# tools/dataset_converters/make_tiny_data.py), 64 px crops, batch 16, two
# epochs. The recipe is the full config's (no layer decay, random erasing
# 0.1, mixup / cutmix, label smoothing) but the lr, 1e-4, large enough
# for two epochs to move the weights (a plumbing run).
_base_ = 'vit-base-p16_8xb96-coslr-360e_inat2019.py'

img_size = 64
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

data_root = 'data/tiny/inat2019'
train_pipeline = [
    dict(t, scale=img_size) if t['type'] == 'RandomResizedCrop' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_size * 256 // 224) if t['type'] == 'ResizeEdge' else
    dict(t, crop_size=img_size) if t['type'] == 'CenterCrop' else t
    for t in _base_.test_pipeline
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

batch_size = 16
optim_wrapper = dict(optimizer=dict(lr=1e-4))

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
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
