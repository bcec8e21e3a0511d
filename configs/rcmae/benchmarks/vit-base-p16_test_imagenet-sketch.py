# RC-MAE Table 7 (Sec. 6.5, App. E.3): top-1 on ImageNet-Sketch (Wang et al.
# 2019, the 1000 ImageNet classes) of the ImageNet-1k fine-tuned ViT-B/16
# (../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py), tested
# without further tuning. Paper: RC-MAE 35.8, MAE 34.5 top-1.
#
#   python tools/test.py <this config> <fine-tuned checkpoint>
_base_ = '../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNetSketch',
        data_root='data/imagenet-sketch/sketch',
        pipeline=_base_.test_pipeline))
test_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
