# SdAE ViT-B/16, 800 epochs (supplementary Table S-2). Everything else as the
# 300-epoch recipe; the paper does not state a different warm-up.
_base_ = 'sdae_vit-base-p16_8xb96-coslr-300e_in1k.py'

max_epochs = 800
warmup_epochs = 60
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
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
