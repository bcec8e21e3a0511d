# G2SD specific distillation, ADE20K semantic segmentation (supplementary
# Sec. 1.3; released G2SD_seg_dis: distillation/losses/cwd.py,
# distillers/segmentation_distiller.py, configs/distill/distill_cwd*.py):
# UperNet on the ViT-S/16 from the generic stage, trained with
#   L = L_decode + L_aux + 3 CWD_1(student logits, teacher logits),
# channel-wise distillation of the 150-class decode-head logits (per
# channel a softmax over the positions at temperature 1, KL(teacher ||
# student) x 1^2, averaged over images and channels;
# mmsdae/models/segmentors/g2sd_encoder_decoder.py). Weight 3, lr 2e-4
# and layer decay 0.75 are the supplementary's; the released
# configs/distill/distill_cwd.py uses weight 10, lr 1e-4, layer decay 0.65
# and batch 16: upernet_vit-small-p16_8xb2-cwd10-160k_ade20k-512x512.py.
# Teacher: the ViT-B UperNet of configs/sdae/benchmarks/upernet_vit-base-
# p16_8xb2-160k_ade20k-512x512.py fine-tuned from an MAE ViT-B (its
# checkpoint is the teacher file; the teacher architecture below is that
# config's model). Batch 32 (8 GPUs x 4), AdamW lr 2e-4 (ViT-S; 5e-4 for
# ViT-T), layer decay 0.75, drop path 0.1 (supplementary); 160k iterations,
# 1500 warm-up iterations, poly decay (released configs); UperNet 384
# channels as the released student.
# Paper: ViT-S reaches 99.3 % of its ViT-B teacher's mIoU (main paper).
#
#   bash tools/dist_train.sh <this config> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/g2sd_vit-s_student.pth \
#       model.teacher.checkpoint=<ViT-B UperNet checkpoint>
_base_ = ('../../sdae/benchmarks/'
          'upernet_vit-base-p16_8xb2-160k_ade20k-512x512.py')

custom_imports = dict(
    imports=['mmsdae', 'mmsdae.models.segmentors', 'mmpretrain.models'],
    allow_failed_imports=False)

teacher_ckpt = 'work_dirs/teachers/upernet_vit-base-p16_ade20k-512x512.pth'
embed_dims = 384
# the ViT-B UperNet as fine-tuned (its weights come from teacher_ckpt)
_teacher = dict(
    _base_.model, backbone=dict(_base_.model.backbone, init_cfg=None))
model = dict(
    type='G2SDEncoderDecoder',
    backbone=dict(
        arch='deit-small',  # 384 wide, 12 blocks, 6 heads
        drop_path_rate=0.1),
    neck=dict(embed_dim=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=embed_dims),
    auxiliary_head=dict(in_channels=embed_dims),
    teacher=dict(type='FrozenTeacher', checkpoint=teacher_ckpt,
                 model=_teacher),
    cwd_tau=1.0,
    cwd_weight=3.0)

train_dataloader = dict(batch_size=4)

optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(layer_decay_rate=0.75))
auto_scale_lr = dict(base_batch_size=32)
