# The tiny UperNet (CAE setting) trained long enough to learn: 160
# iterations (the full config's 160k / 1000, warm-up 1500 / 100) on the 48
# images of data/tiny-learn (make_tiny_data.py --out data/tiny-learn
# --num-train 48 --num-val 16), scored on the 16 held-out images.
# tools/run_downstream_demo.sh runs it from the SdAE demo encoder and from
# a random encoder side by side.
_base_ = 'upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py'

data_root = 'data/tiny-learn/ade/ADEChallengeData2016'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

max_iters = 160
warmup_iters = 15
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0,
        end=warmup_iters),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=warmup_iters,
        end=max_iters,
        by_epoch=False),
]
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters))
