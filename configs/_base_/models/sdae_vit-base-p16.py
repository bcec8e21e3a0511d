# SdAE ViT-B/16 (SdAE Sec. 2 and supplementary Sec. 1): mask ratio 0.75
# (49 visible of 196 patches), drop path 0.25 in the student encoder only,
# a 512 x 8 decoder predicting 768-d teacher features, 3 teacher folds of
# 49 masked patches, per-patch teacher normalization (Eq. 3), cosine loss
# (Eq. 4).
model = dict(
    type='SdAE',
    backbone=dict(
        type='SdAEViT',
        arch='b',
        img_size=224,
        patch_size=16,
        mask_ratio=0.75,
        drop_path_rate=0.25),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=196,
        patch_size=16,
        in_chans=3,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.,
        predict_feature_dim=768),
    head=dict(type='SdAEHead', norm_target=True, eps=1e-6),
    teacher_input=dict(mode='multi_fold', num_folds=3),
    feature_encoder='student',
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
