# Fine-grained transfer of a Hybrid Distill ViT-B/16 to iNaturalist 2019
# (1010 classes; Hybrid Distill appendix C: "batch size 768, learning rate
# 7.5e-6" for CIFAR-100, Cars and iNaturalist 2019). Where the appendix is
# silent the recipe is the transfer recipe the batch / lr pair comes from
# (iBOT's, after DeiT: no layer-wise decay, random erasing 0.1, 360 epochs
# for iNaturalist 2019, 1000 for the others) and otherwise the ImageNet
# fine-tuning config it inherits (224 px, RandAugment, mixup 0.8, cutmix
# 1.0, label smoothing 0.1, drop path 0.1, AdamW wd 0.05, cosine); every
# value and its source: configs/hybrid_distill/README.md.
#
#   bash tools/dist_train.sh <this config> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=<encoder exported by
#       tools/model_converters/sdae_to_vit.py>
_base_ = '../../sdae/benchmarks/vit-base-p16_8xb256-coslr-100e_in1k.py'

num_classes = 1010
data_preprocessor = dict(num_classes=num_classes)
model = dict(head=dict(num_classes=num_classes))

data_root = 'data/inat2019'
train_pipeline = [
    dict(t, erase_prob=0.1) if t['type'] == 'RandomErasing' else t
    for t in _base_.train_pipeline
]
train_dataloader = dict(
    batch_size=96,
    dataset=dict(
        _delete_=True,
        type='INat2019',
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=96,
    dataset=dict(
        _delete_=True,
        type='INat2019',
        data_root=data_root,
        split='val',
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader

batch_size = 768  # 8 GPUs x 96
optim_wrapper = dict(
    optimizer=dict(lr=7.5e-6),  # the appendix's value, at batch 768
    paramwise_cfg=dict(layer_decay_rate=1.0))

max_epochs = 360
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
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
auto_scale_lr = dict(base_batch_size=batch_size)
