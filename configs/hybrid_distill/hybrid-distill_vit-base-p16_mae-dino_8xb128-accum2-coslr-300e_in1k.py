# Hybrid Distill, ViT-B/16 student from MAE ViT-B (T_m) + DINO ViT-B/16
# (T_c): appendix Table A3. Everything else as the MAE + DeiT config.
# T_c is DINO's self-supervised ViT-B/16 (facebookresearch/dino; LayerNorm
# eps 1e-6, qkv bias, no classifier: mmpretrain's arch 'b' with its
# defaults). Either DINO file works, read by mmsdae.utils.checkpoint:
# - the released backbone dino_vitbase16_pretrain.pth (timm keys, no head);
# - the full training checkpoint (teacher / student with backbone. /
#   module.backbone. prefixes, DINO heads, optimizer, args): its teacher
#   backbone is taken (what DINO evaluates and releases), the heads are
#   reported unused; model.teacher_c.prefixes.backbone=student. takes the
#   student instead.
# DINO normalises its input with the ImageNet mean / std, as the student.
#   bash tools/dist_train.sh <this config> 8 --amp --cfg-options \
#       model.teacher_c.checkpoint=checkpoints/dino_vitbase16_pretrain.pth \
#       model.teacher_m.checkpoint=checkpoints/mae_pretrain_vit_base.pth
# Paper (Mask R-CNN 1x, COCO, appendix Table A3): 49.6 / 43.5 AP box / mask
# (DINO 46.8 / 41.5, Distill-DINO 47.5 / 41.9, MAE 48.4 / 42.6,
# Distill-MAE 49.1 / 43.1).
_base_ = ('hybrid-distill_vit-base-p16_mae-deit_8xb128-accum2-coslr-300e_'
          'in1k.py')

teacher_c_ckpt = 'checkpoints/dino_vitbase16_pretrain.pth'
model = dict(
    teacher_c=dict(checkpoint=teacher_c_ckpt, backbone=dict(arch='b')))
