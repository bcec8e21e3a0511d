# CPU-sized version of vit-base-p16_test_imagenet-c.py,
# ImageNet-C (mCE): the tiny fine-tuned ViT of
# ../../sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py on
# the tiny set that
#   python tools/dataset_converters/make_tiny_robustness_data.py
# writes from the tiny ImageNet's val images. Same dataset class,
# pipeline (at 64 px) and metric as the full config.
_base_ = '../../sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py'

# ImageNetC gives each sample its corruption and severity: PackInputs
# passes them on to MeanCorruptionError.
test_pipeline = _base_.test_pipeline[:-1] + [
    dict(
        type='PackInputs',
        meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction', 'corruption',
                   'severity'))
]
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNetC',
        data_root='data/tiny/imagenet-c',
        pipeline=test_pipeline))
test_evaluator = dict(_delete_=True, type='MeanCorruptionError')
