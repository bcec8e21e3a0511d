# ImageNet-1k fine-tuning of an SdAE ViT-L/16, the SdAE supplementary Sec. 1
# protocol: as ViT-B but 50 epochs, base lr 1e-3 per 256 (8e-3 at 2048),
# layer-wise decay 0.75, drop path 0.2, 5 warm-up epochs. Paper: 85.7 top-1
# (300-epoch SdAE, supplementary Table S-1).
_base_ = 'vit-base-p16_8xb256-coslr-100e_in1k.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    head=dict(in_channels=1024))

base_lr = 1e-3
batch_size = 2048
optim_wrapper = dict(
    optimizer=dict(lr=base_lr * batch_size / 256),
    paramwise_cfg=dict(layer_decay_rate=0.75))

max_epochs = 50
warmup_epochs = 5
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
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
