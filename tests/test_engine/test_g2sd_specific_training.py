"""G2SD specific distillation end to end (issue 8, parts 3 and 5): each tiny
config of configs/g2sd/specific trains through MMEngine's Runner on the
generated ImageNet / COCO / ADE20K folders, distilling from a small random
teacher that the test saves to a temporary checkpoint (the teacher file is
loaded, never trained, never saved with the student), then is scored by
the task's metric. A few iterations each."""
import copy
import logging
import math
import os.path as osp
import sys

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmsdae.datasets.tiny_downstream import make_tiny_downstream_data

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)),
                            'test_models'))
from tiny_task_teachers import tiny_specific_config  # noqa: E402

DISTILL_KEYS = {
    'cls': ('loss_distill', ),
    'det': ('loss_distill_fpn', 'loss_distill_obj'),
    'seg': ('loss_cwd', ),
}
METRICS = {
    'cls': ('accuracy/top1', 0, 100),
    'det': ('coco/bbox_mAP', 0, 1),
    'seg': ('mIoU', 0, 100),
}


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_data')
    make_tiny_downstream_data(str(root))
    return str(root)


def _short(cfg, kind, work_dir):
    """A few iterations (the distillation warm-up of the detection config
    is 4 iterations: the second one already distils), a small test set."""
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    if kind == 'cls':
        cfg.train_dataloader.dataset.indices = 32  # 2 iterations of 16
        cfg.train_cfg.max_epochs = 1
        cfg.param_scheduler = []
    elif kind == 'det':
        cfg.train_dataloader.dataset.indices = 4  # 2 iterations of 2
        cfg.model.train_cfg.rcnn.sampler.num = 64
    else:
        cfg.train_cfg.max_iters = 2
        cfg.param_scheduler = []
    cfg.train_cfg.val_interval = 10  # no validation: runner.test() scores
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.indices = 16 if kind == 'cls' else 2
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['cls', 'det', 'seg'])
def test_specific_distillation_runs_from_the_tiny_config(kind, tiny_data,
                                                         tmp_path):
    cfg = _short(
        tiny_specific_config(kind, tmp_path, tiny_data), kind,
        tmp_path / 'work')
    teacher_file = cfg.model.teacher.checkpoint
    saved = torch.load(teacher_file)['state_dict']
    init_default_scope(cfg.default_scope)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.logger.setLevel(logging.WARNING)
    runner.train()

    hub = runner.message_hub
    for key in ('loss', ) + DISTILL_KEYS[kind]:
        value = hub.get_scalar(f'train/{key}').current()
        assert math.isfinite(value), (key, value)
    # the last iteration distils (detection: past iteration 0 of the ramp)
    assert all(hub.get_scalar(f'train/{k}').current() > 0
               for k in DISTILL_KEYS[kind])

    model = runner.model
    teacher = model.teacher.teacher_state_dict()
    prefix = '' if kind == 'cls' else 'model.'
    assert all(torch.equal(teacher[prefix + k], v) for k, v in saved.items())
    assert [k for k in model.state_dict() if k.startswith('teacher.')] == [
        'teacher.fingerprint'
    ]

    metrics = runner.test()
    key, low, high = METRICS[kind]
    assert low <= float(metrics[key]) <= high, metrics
