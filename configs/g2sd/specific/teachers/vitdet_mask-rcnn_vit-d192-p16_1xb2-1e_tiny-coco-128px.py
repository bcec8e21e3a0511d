# The teacher of ../vitdet_mask-rcnn_vit-tiny-p16-distilled_1xb2-1e_tiny-
# coco-128px.py: the tiny ViTDet Mask R-CNN (configs/g2sd/benchmarks/
# vitdet_mask-rcnn_vit-tiny-p16_1xb2-1e_tiny-coco-128px.py) on a 192 x 4
# ViT, as the ViT-B ViTDet teacher of the full config (random start: the
# demo encoders have 8 px patches). Its work_dirs/<this config>/epoch_1.pth
# is the teacher file.
_base_ = ('../../benchmarks/'
          'vitdet_mask-rcnn_vit-tiny-p16_1xb2-1e_tiny-coco-128px.py')

embed_dims = 192
model = dict(
    backbone=dict(
        arch=dict(
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=6,
            feedforward_channels=768)),
    neck=dict(
        backbone_channel=embed_dims,
        in_channels=[embed_dims // 4, embed_dims // 2, embed_dims,
                     embed_dims]))
