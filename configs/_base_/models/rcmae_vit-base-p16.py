# RC-MAE ViT-B/16 (RC-MAE paper Sec. 5, appendix E.2): the MAE of the
# baseline (encoder 12 x 768 on the 25 % visible patches, decoder 8 x 512,
# per-patch normalized pixel targets) plus an EMA teacher copying encoder
# and decoder; loss Eq. 6 = reconstruction + 1 x consistency on the
# student's masked patches; RC-MAE-S (same mask); the teacher encoder is the
# one exported for downstream tasks (appendix F.1).
model = dict(
    type='RCMAE',
    backbone=dict(
        type='SdAEViT', arch='b', img_size=224, patch_size=16,
        mask_ratio=0.75),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=196,
        patch_size=16,
        in_chans=3,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.),
    head=dict(
        type='RCMAEHead',
        norm_pix=True,
        patch_size=16,
        consistency_weight=1.0,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    teacher_mask='same',
    feature_encoder='teacher',
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
