# RC-MAE ViT-B/16 with mask ratio 0.8, 1600 epochs (Table 3: fine-tuning
# 83.5).
_base_ = 'rcmae_vit-base-p16_8xb512-coslr-1600e_in1k.py'

model = dict(backbone=dict(mask_ratio=0.8))
