# CPU demo of Hybrid Distill on the embedded procedural images: the SdAE
# demo's data, optimizer and schedule (10 epochs of 256 images at 64 px,
# batch 32, 8 px patches) with a Hybrid Distill model at demo size. The
# student is the 96 x 4 ViT (3 heads) of the demo, so the exported student
# loads into configs/sdae/benchmarks/vit-tiny-p8_*. Teachers (train them
# first; the paths below are where these runs write):
# - T_m (MIM): the MAE demo, configs/rcmae/mae_vit-tiny-p8_1xb32-10e_
#   procedural-64px.py (96 x 4, 3 heads: the student imitates its attention
#   head by head at blocks 1-3);
# - T_c (supervised, the DeiT stand-in): the tiny fine-tuned classifier of
#   tools/run_downstream_demo.sh (configs/sdae/benchmarks/vit-tiny-p8_1xb16-
#   coslr-2e_tiny-in1k-64px.py; mean-pooled head, so no final norm: built
#   here with final_norm=False and its ln2 / head reported unused).
# Masking: none in epochs 0-2, 16 of 64 patches in 3-5, 32 in 6-9.
#   python tools/train.py \
#       configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py
#   bash tools/run_downstream_demo.sh    # writes the T_c run below
#   python tools/train.py \
#       configs/hybrid_distill/hybrid-distill_vit-tiny-p8_1xb32-10e_procedural-64px.py
_base_ = '../sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py'

img_size = 64
patch_size = 8
teacher_c_ckpt = ('work_dirs/downstream/vit-tiny-p8_1xb16-coslr-2e_tiny-'
                  'in1k-64px/epoch_2.pth')
teacher_m_ckpt = ('work_dirs/mae_vit-tiny-p8_1xb32-10e_procedural-64px/'
                  'epoch_10.pth')
tiny_vit = dict(
    embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384)

model = dict(
    _delete_=True,
    type='HybridDistill',
    backbone=dict(
        type='SdAEViT',
        arch=tiny_vit,
        img_size=img_size,
        patch_size=patch_size,
        drop_path_rate=0.0,
        mask_ratio=0.75),  # unused
    head=dict(
        type='FeatureDistillHead',
        in_channels=96,
        out_channels=96,
        distance='smooth_l1',
        beta=2.0,
        target_norm=True),
    relation_head=dict(
        type='TokenRelationHead', distance='kl', head_reduce='none'),
    alpha=1.0,
    relation_layers=[0, 1, 2],
    teacher_relation_layers=[0, 1, 2],
    token_masking=dict(
        stages=[(0.0, 0.0), (0.3, 0.25), (0.6, 0.5)],
        score_teacher='teacher_c',
        score_layer=-1),
    teacher_m_input='visible',
    teacher_c=dict(
        type='FrozenTeacher',
        checkpoint=teacher_c_ckpt,
        backbone=dict(
            type='VisionTransformer',
            arch=tiny_vit,
            img_size=img_size,
            patch_size=patch_size,
            final_norm=False,
            out_type='raw')),
    teacher_m=dict(
        type='FrozenTeacher',
        checkpoint=teacher_m_ckpt,
        backbone=dict(
            type='SdAEViT',
            arch=tiny_vit,
            img_size=img_size,
            patch_size=patch_size,
            mask_ratio=0.75)),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
custom_hooks = [
    dict(type='TrainSummaryHook'),
    {{_base_.knn_monitor}},
]
