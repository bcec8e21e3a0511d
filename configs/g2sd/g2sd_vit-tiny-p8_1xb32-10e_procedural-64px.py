# CPU demo of G2SD generic distillation on the embedded procedural images:
# the SdAE demo's data, optimizer and schedule (10 epochs of 256 images at
# 64 px, batch 32, 8 px patches) with a G2SD model at demo size. Teacher:
# the 192-wide MAE of mae_vit-d192-p8_1xb32-10e_procedural-64px.py (train it
# first; its 128 x 4 decoder's block 2 is the target, halfway as block 4 of
# 8 in the paper). Student: the 96 x 4 ViT of the SdAE demo (so the
# exported student loads into configs/sdae/benchmarks/vit-tiny-p8_*) with a
# 64 x 2 decoder (half the teacher decoder's width and depth, as 256 x 4
# for 512 x 8) and the MLP head 64 -> 128 -> 128.
#   python tools/train.py \
#       configs/g2sd/mae_vit-d192-p8_1xb32-10e_procedural-64px.py
#   python tools/train.py \
#       configs/g2sd/g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py
_base_ = '../sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py'

img_size = 64
patch_size = 8
teacher_ckpt = ('work_dirs/mae_vit-d192-p8_1xb32-10e_procedural-64px/'
                'epoch_10.pth')

model = dict(
    _delete_=True,
    type='G2SD',
    backbone=dict(
        type='SdAEViT',
        arch=dict(
            embed_dims=96,
            num_layers=4,
            num_heads=3,
            feedforward_channels=384),
        img_size=img_size,
        patch_size=patch_size,
        mask_ratio=0.75,
        drop_path_rate=0.0),
    neck=dict(
        type='MAEFeatureDecoder',
        num_patches=(img_size // patch_size)**2,
        embed_dim=96,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=4,
        mlp_ratio=4.),
    head=dict(
        type='G2SDHead',
        in_channels=64,
        hidden_channels=128,
        out_channels=128,
        beta=2.0,
        masked_only=False),
    teacher=dict(
        type='FrozenTeacher',
        checkpoint=teacher_ckpt,
        backbone=dict(
            type='SdAEViT',
            arch=dict(
                embed_dims=192,
                num_layers=4,
                num_heads=6,
                feedforward_channels=768),
            img_size=img_size,
            patch_size=patch_size,
            mask_ratio=0.75),
        neck=dict(
            type='MAEPretrainDecoder',
            num_patches=(img_size // patch_size)**2,
            patch_size=patch_size,
            in_chans=3,
            embed_dim=192,
            decoder_embed_dim=128,
            decoder_depth=4,
            decoder_num_heads=4,
            mlp_ratio=4.)),
    target_block=2,
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
custom_hooks = [
    dict(type='TrainSummaryHook'),
    {{_base_.knn_monitor}},
]
