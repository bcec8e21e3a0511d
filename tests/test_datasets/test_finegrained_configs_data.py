"""The fine-grained transfer configs (issue 18, part 2) read their data
with mmpretrain's classes: Stanford Cars from its official
``cars_annos.mat`` layout (written here with two images), CIFAR-100's
arrays through a pipeline without ``LoadImageFromFile``."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HD = osp.join(ROOT, 'configs', 'hybrid_distill', 'benchmarks')


def build(cfg_dataset, **kwargs):
    init_default_scope('mmpretrain')
    import mmsdae  # noqa: F401
    from mmpretrain.registry import DATASETS
    return DATASETS.build(dict(cfg_dataset, **kwargs))


def test_stanford_cars_config_reads_the_official_layout(tmp_path):
    import mat4py
    os.makedirs(tmp_path / 'car_ims')
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        cv2.imwrite(str(tmp_path / 'car_ims' / f'{i:06d}.jpg'),
                    rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    mat4py.savemat(
        str(tmp_path / 'cars_annos.mat'),
        dict(annotations=dict(
            relative_im_path=[f'car_ims/{i:06d}.jpg' for i in (1, 2, 3)],
            # 1-based classes in the file; the third image is a test image
            **{'class': [1, 196, 5]}, test=[0, 0, 1])))
    cfg = Config.fromfile(
        osp.join(HD, 'vit-base-p16_8xb96-coslr-1000e_stanfordcars.py'))
    train = build(cfg.train_dataloader.dataset, data_root=str(tmp_path))
    test = build(cfg.test_dataloader.dataset, data_root=str(tmp_path))
    assert [train.get_data_info(i)['gt_label'] for i in range(2)] == [0, 195]
    assert [test.get_data_info(0)['gt_label']] == [4]
    sample = train[1]
    assert tuple(sample['inputs'].shape) == (3, 224, 224)
    assert len(train.CLASSES) == cfg.model.head.num_classes == 196


def test_cifar100_config_pipeline_takes_the_arrays():
    from mmcv.transforms import Compose
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(
        osp.join(HD, 'vit-base-p16_8xb96-coslr-1000e_cifar100.py'))
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = 255  # red in the RGB array mmpretrain's CIFAR gives
    for key in ('train_dataloader', 'test_dataloader'):
        out = Compose(cfg[key].dataset.pipeline)(
            dict(img=image.copy(), gt_label=3, img_shape=(32, 32),
                 ori_shape=(32, 32)))
        assert tuple(out['inputs'].shape) == (3, 224, 224)
    # no channel swap: the red channel reaches the model first
    from mmpretrain.registry import MODELS
    preprocessor = MODELS.build(
        dict(cfg.data_preprocessor, type='ClsDataPreprocessor'))
    out = Compose(cfg.test_dataloader.dataset.pipeline)(
        dict(img=image.copy(), gt_label=3, img_shape=(32, 32),
             ori_shape=(32, 32)))
    batch = preprocessor(dict(inputs=[out['inputs']],
                              data_samples=[out['data_samples']]))
    means = batch['inputs'][0].mean((1, 2))
    assert means[0] == pytest.approx((255 - 123.675) / 58.395, abs=0.05)
    assert means[1] == pytest.approx(-116.28 / 57.12, abs=0.05)
    with pytest.raises(RuntimeError, match='CIFAR100'):
        build(cfg.train_dataloader.dataset, data_root='/nonexistent')
