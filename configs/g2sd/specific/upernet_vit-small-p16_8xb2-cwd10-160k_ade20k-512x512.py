# G2SD segmentation distillation with the released code's settings
# (G2SD_seg_dis/src/configs/distill/distill_cwd.py, ViT-B -> ViT-S): CWD
# weight 10, AdamW lr 1e-4, layer decay 0.65, batch 16 (8 GPUs x 2). The
# supplementary Sec. 1.3 says weight 3, lr 2e-4, layer decay 0.75 (the
# default, upernet_vit-small-p16_8xb4-160k_ade20k-512x512.py); everything
# else is shared.
_base_ = 'upernet_vit-small-p16_8xb4-160k_ade20k-512x512.py'

model = dict(cwd_weight=10.0)
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(
    optimizer=dict(lr=1e-4), paramwise_cfg=dict(layer_decay_rate=0.65))
auto_scale_lr = dict(base_batch_size=16)
