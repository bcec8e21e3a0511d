"""The tiny Cascade Mask R-CNN and ViTDet configs (issue 18, parts 3 and 4)
train two iterations through MMEngine's Runner on the generated COCO
folder with finite losses, the cascade's three stages and the G2SD
detection distillation each present in the losses, and are scored by
mmdet's CocoMetric."""
import copy
import logging
import math
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmsdae.datasets.tiny_downstream import make_tiny_downstream_data

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)),
                            'test_models'))
from tiny_task_teachers import save_tiny_teacher  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CASCADE = ('configs/hybrid_distill/benchmarks/'
           'cascade-mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py')
VITDET = ('configs/g2sd/benchmarks/'
          'vitdet_mask-rcnn_vit-tiny-p16_1xb2-1e_tiny-coco-128px.py')
VITDET_SD = ('configs/g2sd/specific/vitdet_mask-rcnn_vit-tiny-p16-distilled_'
             '1xb2-1e_tiny-coco-128px.py')


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_data')
    make_tiny_downstream_data(str(root))
    return str(root)


def short_config(config, data_root, work_dir):
    """Two iterations of 2 images, tested on 2 images, random encoder."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        dataset.data_root = dataset.data_root.replace('data/tiny', data_root)
        dataset.indices = 4 if loader == 'train_dataloader' else 2
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = cfg[evaluator].ann_file.replace(
            'data/tiny', data_root)
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.train_cfg.val_interval = 10
    return cfg


def run(cfg):
    init_default_scope(cfg.default_scope)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.logger.setLevel(logging.WARNING)
    runner.train()
    losses = {
        k[len('train/'):]: v.current()
        for k, v in runner.message_hub.log_scalars.items()
        if k.startswith('train/') and 'loss' in k
    }
    assert losses and all(math.isfinite(v) for v in losses.values()), losses
    metrics = runner.test()
    assert 0 <= float(metrics['coco/bbox_mAP']) <= 1, metrics
    assert 0 <= float(metrics['coco/segm_mAP']) <= 1, metrics
    return runner, losses


@pytest.mark.slow
def test_tiny_cascade_mask_rcnn_trains(tiny_data, tmp_path):
    runner, losses = run(short_config(CASCADE, tiny_data, tmp_path))
    assert type(runner.model).__name__ == 'CascadeRCNN'
    for stage in range(3):  # mmdet names the stages' losses s0., s1., s2.
        assert f's{stage}.loss_bbox' in losses, sorted(losses)
        assert f's{stage}.loss_mask' in losses, sorted(losses)


@pytest.mark.slow
def test_tiny_vitdet_mask_rcnn_trains(tiny_data, tmp_path):
    runner, _ = run(short_config(VITDET, tiny_data, tmp_path))
    vit = runner.model.backbone
    assert sorted(vit.global_attn_indexes) == [1, 3]
    # the relative positions were trained (zero at the start)
    assert vit.layers[0].attn.rel_pos.rel_pos_h.abs().sum() > 0


@pytest.mark.slow
def test_tiny_vitdet_specific_distillation_trains(tiny_data, tmp_path):
    cfg = short_config(VITDET_SD, tiny_data, tmp_path / 'work')
    teacher_file = str(tmp_path / 'teacher.pth')
    save_tiny_teacher('det', cfg, teacher_file)
    cfg.model.teacher.checkpoint = teacher_file
    runner, losses = run(cfg)
    # the last of the 2 iterations distils (warm-up ramp of 4 iterations)
    assert losses['loss_distill_fpn'] > 0 and losses['loss_distill_obj'] > 0
    saved = torch.load(teacher_file)['state_dict']
    teacher = runner.model.teacher.teacher_state_dict()
    assert all(torch.equal(teacher['model.' + k], v)
               for k, v in saved.items())
