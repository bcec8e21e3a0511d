# G2SD generic distillation, ViT-S/16 student from an MAE ViT-B/16 teacher
# (arXiv 2302.14771 Sec. 3; released code pengzhiliang/G2SD, GD.sh:
# --teacher_model mae_vit_base_patch16 --student_model
# mae_vit_small_patch16_dec256d4b --mask_ratio 0.75 --drop_path 0.0,
# --layer_index 4 and --supervise_all True by default):
# - one random mask (0.75) shared by teacher and student;
# - teacher: the full MAE ViT-B (encoder + 512 x 8 decoder, frozen) on the
#   student's visible patches; target = hidden state after decoder block 4,
#   before the decoder norm, LayerNorm without affine (eps 1e-6), every
#   token (class token + 196 patches);
# - student: ViT-S encoder (384 x 12, 6 heads, no drop path), 256 x 4
#   decoder (8 heads) whose last hidden state (no decoder norm) feeds an MLP
#   256 -> 512 -> 512 (GELU); smooth L1, beta 2.
# The teacher must be a full MAE *training* checkpoint with its decoder
# (the public mae_pretrain_vit_base.pth holds the encoder only and is
# refused): mmpretrain's MAE ViT-B/16 pre-training checkpoint, the official
# MAE training checkpoint, or a run of configs/rcmae/mae_vit-base-p16_*.py.
# Set the file with --cfg-options model.teacher.checkpoint=<file>.
teacher_ckpt = 'checkpoints/mae_vit-base-p16_full.pth'

model = dict(
    type='G2SD',
    backbone=dict(
        type='SdAEViT',
        arch=dict(
            embed_dims=384,
            num_layers=12,
            num_heads=6,
            feedforward_channels=1536),
        img_size=224,
        patch_size=16,
        mask_ratio=0.75,
        drop_path_rate=0.0),
    neck=dict(
        type='MAEFeatureDecoder',
        num_patches=196,
        embed_dim=384,
        decoder_embed_dim=256,
        decoder_depth=4,
        decoder_num_heads=8,
        mlp_ratio=4.),
    head=dict(
        type='G2SDHead',
        in_channels=256,
        hidden_channels=512,
        out_channels=512,
        beta=2.0,
        masked_only=False),
    teacher=dict(
        type='FrozenTeacher',
        checkpoint=teacher_ckpt,
        # SdAEViT = mmpretrain's MAEViT (same weights) + encode_patches
        backbone=dict(
            type='SdAEViT',
            arch='b',
            img_size=224,
            patch_size=16,
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
            mlp_ratio=4.)),
    target_block=4,
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
