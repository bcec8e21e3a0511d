# The teacher of ../vit-tiny-p8-distilled_1xb16-coslr-2e_tiny-in1k-64px.py:
# the tiny ImageNet fine-tuning (configs/sdae/benchmarks/vit-tiny-p8_1xb16-
# coslr-2e_tiny-in1k-64px.py) of the 192 x 4 demo MAE
# (configs/g2sd/mae_vit-d192-p8_1xb32-10e_procedural-64px.py), as the
# fine-tuned MAE ViT-B teacher of the full config. Its
# work_dirs/<this config>/epoch_2.pth is the teacher file.
_base_ = ('../../../sdae/benchmarks/'
          'vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py')

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
    head=dict(in_channels=embed_dims))
