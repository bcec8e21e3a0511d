# G2SD generic distillation of an MAE ViT-B/16 into ViT-Tiny/16 (192 x 12,
# 3 heads); same teacher, target and schedule as the ViT-S config. Student
# decoder 128 x 4 (4 heads), the released code's
# mae_vit_tiny_patch16_dec128d4b; the head predicts the teacher's 512-d
# decoder features (MLP 128 -> 512 -> 512).
_base_ = 'g2sd_vit-small-p16_8xb512-coslr-300e_in1k.py'

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=192,
            num_layers=12,
            num_heads=3,
            feedforward_channels=768)),
    neck=dict(
        embed_dim=192,
        decoder_embed_dim=128,
        decoder_depth=4,
        decoder_num_heads=4),
    head=dict(in_channels=128))
