# CPU-sized version of vit-base-p16_test_imagenet-sketch.py,
# ImageNet-Sketch (top-1): the tiny fine-tuned ViT of
# ../../sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py on
# the tiny set that
#   python tools/dataset_converters/make_tiny_robustness_data.py
# writes from the tiny ImageNet's val images. Same dataset class,
# pipeline (at 64 px) and metric as the full config.
_base_ = '../../sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py'

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNetSketch',
        data_root='data/tiny/imagenet-sketch',
        pipeline=_base_.test_pipeline))
test_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
