# RC-MAE Table 7 (Sec. 6.5, App. E.3): top-1 on ImageNet-R (Hendrycks et
# al. 2021a) of the ImageNet-1k fine-tuned ViT-B/16
# (../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py), tested
# without further tuning; the 1000 logits are restricted to the 200
# ImageNet-R classes. Paper: RC-MAE 49.5, MAE 48.3 top-1.
#
#   python tools/test.py <this config> <fine-tuned checkpoint>
_base_ = '../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNetR',
        data_root='data/imagenet-r',
        pipeline=_base_.test_pipeline))
test_evaluator = dict(_delete_=True, type='SubsetAccuracy', topk=(1, ))
