# Fine-grained transfer of a Hybrid Distill ViT-B/16 to Stanford Cars (196
# classes, mmpretrain's StanfordCars on the official layout: car_ims/ +
# cars_annos.mat, or cars_train/, cars_test/ + devkit/): the iNaturalist
# 2019 config's recipe (appendix C: batch 768, lr 7.5e-6) for 1000 epochs,
# scored on the test split. Every value and its source:
# configs/hybrid_distill/README.md.
_base_ = 'vit-base-p16_8xb96-coslr-360e_inat2019.py'

num_classes = 196
data_preprocessor = dict(num_classes=num_classes)
model = dict(head=dict(num_classes=num_classes))

data_root = 'data/stanfordcars'
train_dataloader = dict(
    dataset=dict(type='StanfordCars', data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type='StanfordCars', data_root=data_root, split='test'))
test_dataloader = val_dataloader

max_epochs = 1000
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
