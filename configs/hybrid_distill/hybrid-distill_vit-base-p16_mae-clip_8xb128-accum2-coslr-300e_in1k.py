# Hybrid Distill, ViT-B/16 student from MAE ViT-B (T_m) + CLIP ViT-B/16
# image encoder (T_c): the paper's "Hybrid Distill†" rows (appendix Tables
# A1, A2, A4(b), A5). Everything else as the MAE + DeiT config.
# T_c is OpenAI's CLIP ViT-B/16 vision tower in mmpretrain form
# (VisionTransformer with pre_norm = ln_pre, QuickGELU, final norm =
# ln_post; CLIP's 768 -> 512 projection is not used: the student regresses
# the 768-d tokens). mmpretrain's zero-shot CLIP checkpoint keeps it under
# vision_backbone.* (prefix set below); a bare converted file
# (layers.0.attn.qkv.weight ...) needs no prefix: set
# model.teacher_c.prefixes=None. CLIP normalises its input with its own
# mean / std: teacher_c_norm re-normalises the student's input for T_c.
#   bash tools/dist_train.sh <this config> 8 --amp --cfg-options \
#       model.teacher_c.checkpoint=checkpoints/clip-vit-base-p16_openai.pth \
#       model.teacher_m.checkpoint=checkpoints/mae_pretrain_vit_base.pth
# Paper (Mask R-CNN 1x, COCO): Table A4(b) alpha=1.0 50.4 / 44.1 AP box /
# mask (alpha=0: 49.1 / 43.1); Table A1 Hybrid Distill† 50.6 / 44.4, ADE20K
# UperNet 51.5 mIoU; Table A2 Cascade Mask R-CNN 53.4 / 45.9.
_base_ = ('hybrid-distill_vit-base-p16_mae-deit_8xb128-accum2-coslr-300e_'
          'in1k.py')

teacher_c_ckpt = 'checkpoints/clip-vit-base-p16_openai.pth'
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    teacher_c=dict(
        checkpoint=teacher_c_ckpt,
        prefixes=dict(backbone='vision_backbone.'),
        backbone=dict(
            _delete_=True,
            type='VisionTransformer',
            arch='b',
            img_size=224,
            patch_size=16,
            pre_norm=True,
            layer_cfgs=dict(act_cfg=dict(type='QuickGELU')),
            out_type='raw')),
    # OpenAI CLIP's mean / std (0-255, RGB)
    teacher_c_norm=dict(
        mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
        std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]))
