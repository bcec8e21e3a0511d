# The teacher of ../upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py: the
# tiny ADE20K UperNet (configs/sdae/benchmarks/upernet_vit-tiny-p8_1xb2-8i_
# tiny-ade20k-64px.py) on the 192 x 4 demo MAE
# (configs/g2sd/mae_vit-d192-p8_1xb32-10e_procedural-64px.py), as the ViT-B
# UperNet teacher of the full config. Its work_dirs/<this config>/iter_8.pth
# is the teacher file.
_base_ = ('../../../sdae/benchmarks/'
          'upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py')

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
    neck=dict(embed_dim=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4),
    auxiliary_head=dict(in_channels=embed_dims))
