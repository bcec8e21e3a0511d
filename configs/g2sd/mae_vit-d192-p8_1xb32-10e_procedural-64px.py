# CPU demo teacher for
# configs/g2sd/g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py:
# the MAE demo (configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py:
# 10 epochs of 256 procedural 64 px images, 8 px patches) twice as wide
# (192 x 4, 6 heads) with a 128 x 4 decoder, so that the 96-wide demo
# student of G2SD is distilled from a larger MAE, as ViT-S from ViT-B.
# Its work_dirs/<this config>/epoch_10.pth is a full MAE training checkpoint
# (backbone.* + neck.*), the teacher file the G2SD demo loads.
_base_ = '../rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py'

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=192,
            num_layers=4,
            num_heads=6,
            feedforward_channels=768)),
    neck=dict(
        embed_dim=192,
        decoder_embed_dim=128,
        decoder_depth=4,
        decoder_num_heads=4))
