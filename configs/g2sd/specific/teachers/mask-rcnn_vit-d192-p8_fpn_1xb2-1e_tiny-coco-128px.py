# The teacher of ../mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py:
# the tiny COCO Mask R-CNN (configs/sdae/benchmarks/mask-rcnn_vit-tiny-p8_
# fpn_1xb2-1e_tiny-coco-128px.py) on the 192 x 4 demo MAE
# (configs/g2sd/mae_vit-d192-p8_1xb32-10e_procedural-64px.py), as the
# ViT-B Mask R-CNN teacher of the full config. Its
# work_dirs/<this config>/epoch_1.pth is the teacher file.
_base_ = ('../../../sdae/benchmarks/'
          'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py')

embed_dims = 192
model = dict(
    backbone=dict(
        arch=dict(
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=6,
            feedforward_channels=768),
        init_cfg=dict(
            checkpoint='work_dirs/mae_vit-d192-p8_1xb32-10e_procedural-64px/'
            'epoch_10.pth')),
    neck=[  # a list replaces the base's whole: copy its items
        dict(_base_.model.neck[0], embed_dim=embed_dims),
        dict(_base_.model.neck[1], in_channels=[embed_dims] * 4),
    ])
