# SdAE ViT-L/16, 300 epochs (supplementary Table S-1). Encoder 1024 wide, 24
# blocks, 16 heads; the released code keeps the 512 x 8 decoder, which now
# predicts 1024-d teacher features. The paper gives no ViT-L drop path for
# pre-training; the ViT-B value 0.25 is kept.
_base_ = 'sdae_vit-base-p16_8xb96-coslr-300e_in1k.py'

model = dict(
    backbone=dict(arch='l'),
    neck=dict(embed_dim=1024, predict_feature_dim=1024))
