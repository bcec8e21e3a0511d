# RC-MAE ViT-S/16 (appendix E.2: encoder 12 x 384, decoder 4 x 256), 1600
# epochs, Table 9 setting. Paper (Table 4): fine-tuning 82.0 (MAE 81.8).
_base_ = 'rcmae_vit-base-p16_8xb512-coslr-1600e_in1k.py'

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=384,
            num_layers=12,
            num_heads=6,
            feedforward_channels=1536)),
    neck=dict(
        embed_dim=384,
        decoder_embed_dim=256,
        decoder_depth=4,
        decoder_num_heads=8))
