# RC-MAE Table 7 (Sec. 6.5, App. E.3): mean Corruption Error on ImageNet-C
# (Hendrycks & Dietterich 2019) of the ImageNet-1k fine-tuned ViT-B/16
# (../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py), tested
# without further tuning, with the fine-tuning config's test pipeline.
# Paper: RC-MAE 49.9, MAE 51.7 mCE (lower is better).
#
#   python tools/test.py <this config> <fine-tuned checkpoint>
_base_ = '../../sdae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

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
        data_root='data/imagenet-c',
        pipeline=test_pipeline))
test_evaluator = dict(_delete_=True, type='MeanCorruptionError')
