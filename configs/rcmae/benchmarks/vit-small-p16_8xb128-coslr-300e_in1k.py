# ImageNet-1k fine-tuning of an RC-MAE / MAE ViT-S/16 (12 x 384, 6 heads),
# RC-MAE Table 10 and App. E.3 (BEiT's protocol for ViT-S): 300 epochs,
# batch 1024 (8 GPUs x 128), base lr 5e-4 per 256, layer decay 0.75, drop
# path 0.1, 5 warm-up epochs, weight decay 0.05, MAE's augmentation.
# Paper (Table 4): RC-MAE 82.0, MAE 81.8 top-1.
_base_ = '../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=384,
            num_layers=12,
            num_heads=6,
            feedforward_channels=1536),
        drop_path_rate=0.1),
    head=dict(in_channels=384))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))

max_epochs = 300
warmup_epochs = 5
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=1e-6,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
