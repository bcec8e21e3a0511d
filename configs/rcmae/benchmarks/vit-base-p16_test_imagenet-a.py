# RC-MAE Table 7 (Sec. 6.5, App. E.3): top-1 on ImageNet-A (Hendrycks et
# al. 2021b) of the ImageNet-1k fine-tuned ViT-B/16
# (../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py), tested
# without further tuning; the 1000 logits are restricted to the 200
# ImageNet-A classes. Paper: RC-MAE 36.5, MAE 35.9 top-1.
#
#   python tools/test.py <this config> <fine-tuned checkpoint>
_base_ = '../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNetA',
        data_root='data/imagenet-a',
        pipeline=_base_.test_pipeline))
test_evaluator = dict(_delete_=True, type='SubsetAccuracy', topk=(1, ))
