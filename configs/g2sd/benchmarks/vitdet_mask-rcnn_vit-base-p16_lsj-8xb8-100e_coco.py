# COCO Mask R-CNN in the ViTDet framework (Li et al. 2022; G2SD
# supplementary Sec. 1.2 and Table 3: "the ViTDet framework, trained for
# 100 epochs with single-scale input (1024 x 1024)"; detectron2's
# projects/ViTDet/configs/COCO/mask_rcnn_vitdet_b_100ep.py), for the ViT-B
# teacher of G2SD's detection distillation (fine-tuned from an MAE ViT-B):
# a ViT-B/16 at 1024 x 1024 without class token, learned absolute positions
# (the checkpoint's 14 x 14 table, bicubically resized to the input's grid
# at every forward pass), 14 x 14 windowed attention with
# global attention in blocks 3, 6, 9, 12 (indices 2, 5, 8, 11) and ViTDet's
# decomposed relative positions in every block (zero at the start); the
# last block alone feeds the simple feature pyramid (SimpleFPN: x4, x2, x1,
# x0.5, LayerNorm, 256 channels, strides 4-64); a 2-conv RPN, 4 conv + 1 fc
# box head and 4-conv mask head with LayerNorm; large-scale jitter at 1024
# (from the LSJ Mask R-CNN config it inherits), batch 64 (8 GPUs x 8), AdamW
# lr 1e-4, weight decay 0.1, layer decay 0.7, drop path 0.1, 250 warm-up
# iterations, lr x0.1 at 8/9 and 26/27 of training, AMP (--amp). Paper: the
# Table 3 numbers are the ViT-S students' (configs/g2sd/README.md). Every
# value and its source: configs/g2sd/README.md.
#
#   bash tools/dist_train.sh <this config> 8 --amp --cfg-options \
#       model.backbone.init_cfg.checkpoint=<MAE ViT-B encoder>
_base_ = ('../../sdae/benchmarks/'
          'mask-rcnn_vit-base-p16_fpn_lsj-8xb2-100e_coco.py')

custom_imports = dict(
    imports=[
        'mmsdae', 'mmsdae.models.detectors', 'mmpretrain.models',
        'mmseg.models'
    ],
    allow_failed_imports=False)

embed_dims = 768
norm_cfg = dict(type='mmpretrain.LN2d', requires_grad=True)
model = dict(
    backbone=dict(
        out_indices=(11, ),
        pos_embed_type='learned',
        pretrain_img_size=224,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
        rel_pos_bias='decomposed'),
    neck=dict(
        _delete_=True,
        type='SimpleFPN',
        backbone_channel=embed_dims,
        in_channels=[embed_dims // 4, embed_dims // 2, embed_dims,
                     embed_dims],
        out_channels=256,
        num_outs=5,
        norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(norm_cfg=norm_cfg), mask_head=dict(norm_cfg=norm_cfg)))

train_dataloader = dict(batch_size=8)

optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7))

max_epochs = 100
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
# ViTDet: 184,375 iterations of 64 images, warm-up 250 iterations from
# 0.001, lr x0.1 at iterations 163,889 and 177,546 (8/9 and 26/27 of
# training: epochs 88.9 and 96.3, rounded to whole epochs here).
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=250),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[89, 96],
        gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=64)
