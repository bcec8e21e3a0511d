# Fine-grained transfer of a Hybrid Distill ViT-B/16 to CIFAR-100
# (mmpretrain's CIFAR100 on the official python archive,
# data/cifar100/cifar-100-python/; never downloaded at run time): the Stanford
# Cars config's recipe (appendix C: batch 768, lr 7.5e-6; 1000 epochs), the
# 32 px images upsampled to 224 by the same crops, normalized with the
# ImageNet statistics the encoder was pre-trained with. Every value and its
# source: configs/hybrid_distill/README.md.
_base_ = 'vit-base-p16_8xb96-coslr-1000e_stanfordcars.py'

num_classes = 100
# mmpretrain's CIFAR100 gives RGB arrays (LoadImageFromFile BGR): no channel
# swap, and the augmentations' fill colours in RGB order.
data_preprocessor = dict(num_classes=num_classes, to_rgb=False)
model = dict(head=dict(num_classes=num_classes))

rgb_mean = _base_.bgr_mean[::-1]
rgb_std = _base_.bgr_std[::-1]
train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in rgb_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.1,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=rgb_mean,
        fill_std=rgb_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    t for t in _base_.val_dataloader.dataset.pipeline
    if t['type'] != 'LoadImageFromFile'
]
data_root = 'data/cifar100'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CIFAR100',
        data_root=data_root,
        split='train',
        download=False,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CIFAR100',
        data_root=data_root,
        split='test',
        download=False,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
