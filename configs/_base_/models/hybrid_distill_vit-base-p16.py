# Hybrid Distill (arXiv 2306.15876, ICLR 2024): a ViT-B/16 student distilled
# from two frozen ViT-B/16 teachers at once:
# - teacher_c (T_c): supervised DeiT-B here (the CLIP variant replaces it);
#   the student's final tokens regress T_c's final tokens (class token +
#   the patches the student sees) through a linear projection;
# - teacher_m (T_m): MAE ViT-B encoder; the student's attention maps at the
#   intermediate blocks imitate T_m's at the same blocks (per head);
# - L = L_feature + alpha * L_relation, alpha = 1 (appendix Table A4);
# - progressive redundant token masking of the student's input (appendix
#   Table A5): the patches least attended by T_c's class token are masked.
# Where the sources are silent the classes' defaults apply (argued in
# configs/hybrid_distill/README.md): relation blocks 0-10 (all but the last),
# smooth L1 (beta 2) to LayerNorm-ed T_c tokens, per-head KL of attention
# rows, redundancy scored by T_c's last block, T_m on the student's tokens;
# masking 0 % / 25 % / 50 % of the patches in the three thirds of the run.
# Teacher files (local, never downloaded): set teacher_c_ckpt /
# teacher_m_ckpt in the config or with
#   --cfg-options model.teacher_c.checkpoint=<file> \
#                 model.teacher_m.checkpoint=<file>
# T_m needs the encoder only: the official encoder-only release
# mae_pretrain_vit_base.pth (timm layout) or any MAE ViT-B training
# checkpoint works. T_c: mmpretrain's DeiT-B checkpoint (backbone.*; its
# classifier head is reported unused) or a timm DeiT-B file.
teacher_c_ckpt = 'checkpoints/deit-base_in1k.pth'
teacher_m_ckpt = 'checkpoints/mae_pretrain_vit_base.pth'

model = dict(
    type='HybridDistill',
    backbone=dict(
        type='SdAEViT',  # MAE's ViT-B (fixed sin-cos positions) + subsets
        arch='b',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.0),
    head=dict(type='FeatureDistillHead', in_channels=768, out_channels=768),
    relation_head=dict(type='TokenRelationHead'),
    alpha=1.0,  # appendix Table A4
    token_masking=dict(stages=[(0.0, 0.0), (1 / 3, 0.25), (2 / 3, 0.5)]),
    teacher_c=dict(
        type='FrozenTeacher',
        checkpoint=teacher_c_ckpt,
        backbone=dict(
            type='VisionTransformer',
            arch='deit-base',
            img_size=224,
            patch_size=16,
            out_type='raw')),
    teacher_m=dict(
        type='FrozenTeacher',
        checkpoint=teacher_m_ckpt,
        # SdAEViT = mmpretrain's MAEViT (same weights) + encode_patches
        backbone=dict(
            type='SdAEViT',
            arch='b',
            img_size=224,
            patch_size=16)),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
