# ImageNet-1k fine-tuning of an RC-MAE / MAE ViT-L/16, RC-MAE Table 10 and
# App. E.3: 100 epochs, batch 1024 = 64 per GPU x 8 GPUs x 2 accumulation
# steps, base lr 5e-4 per 256 (2e-3 at 1024), layer decay 0.65, drop path
# 0.2, 5 warm-up epochs, weight decay 0.05, MAE's augmentation.
# Paper (Table 4): RC-MAE 86.2, MAE 85.5 top-1.
_base_ = '../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    head=dict(in_channels=1024))

train_dataloader = dict(batch_size=64)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=2)
