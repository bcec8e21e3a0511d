# G2SD generic distillation of an MAE ViT-B/16 into ViT-S/16, 300 epochs on
# ImageNet-1k with the released setting (pengzhiliang/G2SD GD.sh and
# main_distill.py defaults): batch 4096 (8 GPUs x 512 here; GD.sh runs
# 8 x 256 with --accum_iter 2, i.e. optim_wrapper.accumulative_counts=2),
# AdamW betas (0.9, 0.95), weight decay 0.05 except biases and norms (timm
# add_weight_decay), base lr 1.5e-4 per 256 images (lr = 1.5e-4 * 4096 /
# 256 = 2.4e-3), 10 linear warm-up epochs then cosine decay to 2.5e-6
# (--min_lr), mask 0.75, MAE augmentation (RandomResizedCrop 0.2-1, flip),
# no gradient clipping. Stage 2 (specific distillation) fine-tunes the
# exported student (backbone.*, tools/model_converters/sdae_to_vit.py).
# Paper (supplementary Table 4): ImageNet top-1 82.0 after fine-tuning the
# generic-distilled ViT-S, 82.5 with specific distillation; Table 3: COCO
# ViTDet 49.9 / 44.5 AP box / mask (w/o S.D).
_base_ = [
    '../_base_/models/g2sd_vit-small-p16.py',
    '../_base_/datasets/imagenet_bs96_sdae.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=512)

base_lr = 1.5e-4  # per 256 images
batch_size = 4096
optim_wrapper = dict(
    type='OptimWrapper',  # add --amp on GPUs (AmpOptimWrapper)
    constructor='TrainableOptimWrapperConstructor',  # the teacher stays out
    optimizer=dict(
        type='AdamW',
        lr=base_lr * batch_size / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={
        'ln': dict(decay_mult=0.0),
        'bias': dict(decay_mult=0.0),
    }))

max_epochs = 300
warmup_epochs = 10
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
        eta_min=2.5e-6,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
# Bad input (README, "What happens on bad data"): stop at a NaN / inf loss
# before the optimizer step; report unreadable images, stop past 1%.
default_hooks = dict(
    nonfinite_loss=dict(type='NonFiniteLossHook', action='stop'),
    bad_images=dict(type='BadImageHook', max_skip_ratio=0.01))
custom_hooks = [dict(type='TrainSummaryHook')]
auto_scale_lr = dict(base_batch_size=batch_size)
