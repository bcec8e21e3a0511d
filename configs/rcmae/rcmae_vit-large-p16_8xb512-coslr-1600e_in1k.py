# RC-MAE ViT-L/16 (appendix E.2: encoder 24 x 1024, decoder 8 x 512), 1600
# epochs, Table 9 setting. Paper (Table 4): fine-tuning 86.2 (MAE 85.5).
_base_ = 'rcmae_vit-base-p16_8xb512-coslr-1600e_in1k.py'

model = dict(backbone=dict(arch='l'), neck=dict(embed_dim=1024))
