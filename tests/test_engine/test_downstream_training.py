"""Every tiny downstream config trains on the generated COCO / ADE20K /
ImageNet folders through MMEngine's Runner and is scored by the real
metrics (mmpretrain Accuracy, mmdet CocoMetric via pycocotools, mmseg
IoUMetric)."""
import copy
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmsdae.datasets.tiny_downstream import make_tiny_downstream_data

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'configs', 'sdae', 'benchmarks')
TINY = {
    'cls': 'vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py',
    'linear': 'vit-tiny-p8_1xb16-linear-coslr-2e_tiny-in1k-64px.py',
    'det': 'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py',
    'seg': 'upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py',
}


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """The three tiny datasets, written once per test session."""
    root = tmp_path_factory.mktemp('tiny_data')
    make_tiny_downstream_data(str(root))
    return str(root)


def tiny_config(kind, data_root, work_dir, checkpoint=None):
    """The tiny config of ``kind`` pointed at ``data_root`` (the folder that
    holds coco/, ade/ and imagenet/), logging into ``work_dir``."""
    cfg = Config.fromfile(osp.join(BENCH, TINY[kind]))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        dataset.data_root = dataset.data_root.replace('data/tiny', data_root)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if 'ann_file' in cfg[evaluator]:
            cfg[evaluator].ann_file = cfg[evaluator].ann_file.replace(
                'data/tiny', data_root)
    if checkpoint is None:
        cfg.model.backbone.init_cfg = None
    else:
        cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.log_level = 'WARNING'
    return cfg


def train_and_test(cfg):
    """Train with the config's loop, then evaluate its test set; returns the
    metrics dict and the last logged loss."""
    init_default_scope(cfg.default_scope)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    return runner.test(), loss


def check_metric(metrics, key, low, high):
    assert key in metrics, sorted(metrics)
    value = float(metrics[key])
    assert low <= value <= high and not math.isnan(value), (key, value)
    return value


@pytest.mark.parametrize('kind', ['cls', 'linear'])
def test_classification_protocols_on_tiny_imagenet(kind, tiny_data,
                                                   tmp_path):
    metrics, loss = train_and_test(tiny_config(kind, tiny_data, tmp_path))
    assert math.isfinite(loss)
    check_metric(metrics, 'accuracy/top1', 0, 100)
    top5 = check_metric(metrics, 'accuracy/top5', 0, 100)
    assert top5 >= metrics['accuracy/top1']


def test_mask_rcnn_on_tiny_coco(tiny_data, tmp_path):
    metrics, loss = train_and_test(tiny_config('det', tiny_data, tmp_path))
    assert math.isfinite(loss)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        check_metric(metrics, key, 0, 1)


def test_upernet_on_tiny_ade20k(tiny_data, tmp_path):
    metrics, loss = train_and_test(tiny_config('seg', tiny_data, tmp_path))
    assert math.isfinite(loss)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        check_metric(metrics, key, 0, 100)
