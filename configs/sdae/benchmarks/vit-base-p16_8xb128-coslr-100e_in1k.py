# ImageNet-1k fine-tuning of a ViT-B/16 with batch 1024 (8 GPUs x 128) and
# 5 warm-up epochs: the released SdAE fine-tuning script's setting (the
# supplementary says 2048 / 10, vit-base-p16_8xb256-coslr-100e_in1k.py) and
# RC-MAE's Table 10 for ViT-B (= MAE's recipe). Everything else as the
# paper's config: 100 epochs, base lr 5e-4 per 256 (2e-3 at 1024), layer
# decay 0.65, drop path 0.1, weight decay 0.05, MAE's augmentation.
# Paper: RC-MAE 83.6 top-1 (1600 epochs, Table 4).
_base_ = 'vit-base-p16_8xb256-coslr-100e_in1k.py'

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

base_lr = 5e-4
batch_size = 1024
optim_wrapper = dict(optimizer=dict(lr=base_lr * batch_size / 256))

max_epochs = 100
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
auto_scale_lr = dict(base_batch_size=batch_size)
