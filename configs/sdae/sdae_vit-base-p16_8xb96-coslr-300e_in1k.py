# SdAE ViT-B/16, 300 epochs on ImageNet-1k (supplementary Sec. 1):
# AdamW (0.9, 0.95), lr 8e-4 at batch 768 (8 GPUs x 96), cosine decay after
# 60 linear warm-up epochs, weight decay 0.05, drop path 0.25, EMA momentum
# 0.96 -> 0.99 (cosine, one teacher update per epoch), mask 0.75, 3 folds.
# With another total batch, pass --auto-scale-lr: lr = 8e-4 * batch / 768.
_base_ = [
    '../_base_/models/sdae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs96_sdae.py',
    '../_base_/default_runtime.py',
]

max_epochs = 300
warmup_epochs = 60

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=8e-4, betas=(0.9, 0.95), weight_decay=0.05),
    # the released code's rule (MAE's add_weight_decay): no decay for
    # 1-d weights and biases; cls_token and mask_token are decayed
    # (configs/sdae/README.md); the position embeddings are fixed sin-cos
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
        }))

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

# Bad input (README, "What happens on bad data"): stop at a NaN / inf loss
# before the optimizer step, naming the iteration and the last checkpoint
# (action='skip' skips such steps instead); report the unreadable images
# skipped per epoch, and stop when more than 1% of an epoch's are.
default_hooks = dict(
    nonfinite_loss=dict(type='NonFiniteLossHook', action='stop'),
    bad_images=dict(type='BadImageHook', max_skip_ratio=0.01))

custom_hooks = [
    dict(
        type='SdAETeacherEMAHook',
        momentum=0.96,
        end_momentum=0.99,
        update_interval='epoch'),
    dict(type='TrainSummaryHook'),
]

# lr 8e-4 is for 8 x 96 = 768 images per step
auto_scale_lr = dict(base_batch_size=768)
