"""RC-MAE and its MAE baseline train from their CPU configs; the teacher
follows RC-MAE's per-iteration EMA (Eq. 2) on the iteration ramp."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmsdae.engine import TeacherEMAHook, TrainSummaryHook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs', 'rcmae')


def tiny_cfg(name, tmp_path, **options):
    cfg = Config.fromfile(
        osp.join(CONFIGS, f'{name}_vit-tiny-p8_1xb32-10e_procedural-64px.py'))
    cfg.merge_from_dict({
        'work_dir': str(tmp_path),
        'train_dataloader.batch_size': 8,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.num_images': 8,
        'train_cfg.max_epochs': 30,
        'param_scheduler': [],
        'optim_wrapper.optimizer.lr': 1e-3,
        'default_hooks.checkpoint.interval': 30,
        'log_level': 'WARNING',
        **options
    })
    return cfg


def hook(runner, kind):
    return next(h for h in runner.hooks if isinstance(h, kind))


@pytest.mark.slow
@pytest.mark.parametrize('name', ['rcmae', 'mae'])
def test_total_loss_falls_when_overfitting_a_few_images(name, tmp_path):
    runner = Runner.from_cfg(tiny_cfg(name, tmp_path))
    runner.train()
    summary = hook(runner, TrainSummaryHook).summary
    assert summary['iterations'] == 30
    assert summary['loss_end'] < 0.8 * summary['loss_start'], summary
    if name == 'rcmae':
        ema = hook(runner, TeacherEMAHook)
        assert int(runner.model.teacher_updates) == 30  # every iteration
        # the iteration ramp ends at end_momentum on the last iteration
        assert ema.last_momentum == pytest.approx(ema.end_momentum)
        hub = runner.message_hub.get_scalar('train/loss_cons')
        assert hub.current() > 0


def test_iteration_schedule_values():
    ema = TeacherEMAHook(momentum=0.996, end_momentum=1.0)
    assert ema.momentum_at(0, 1000) == pytest.approx(0.996)
    assert ema.momentum_at(999, 1000) == pytest.approx(1.0)
    assert ema.momentum_at(500, 1001) == pytest.approx(0.998)
    with pytest.raises(ValueError, match='schedule'):
        TeacherEMAHook(momentum=0.9, end_momentum=0.99, schedule='step')
    with pytest.raises(ValueError, match='end_momentum'):
        TeacherEMAHook(momentum=0.9, end_momentum=1.5)


def test_iteration_schedule_runs_in_an_iteration_based_loop(tmp_path):
    cfg = tiny_cfg('rcmae', tmp_path, **{
        'train_dataloader.dataset.num_images': 4,
        'train_dataloader.batch_size': 2})
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=3)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=3,
                                        by_epoch=False)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert int(runner.model.teacher_updates) == 3


def test_hook_refuses_a_model_without_a_teacher(tmp_path):
    cfg = tiny_cfg('mae', tmp_path, **{'train_cfg.max_epochs': 1})
    cfg.custom_hooks = [dict(type='TeacherEMAHook', momentum=0.99,
                             end_momentum=1.0)]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(TypeError, match='momentum_update'):
        runner.train()


def test_resume_restores_teacher_and_momentum(tmp_path):
    """Stop after epoch 1 of 2 and resume: the teacher (encoder + decoder)
    and its update count come back, and the per-iteration ramp continues
    where it stopped."""
    import torch
    options = {'train_cfg.max_epochs': 2, 'train_dataloader.batch_size': 4,
               'default_hooks.checkpoint.interval': 1}
    first = Runner.from_cfg(tiny_cfg('rcmae', tmp_path / 'a', **options))
    first.train()
    epoch1 = torch.load(tmp_path / 'a' / 'epoch_1.pth', map_location='cpu')
    assert int(epoch1['state_dict']['teacher_updates']) == 2
    assert epoch1['meta']['teacher_ema']['schedule'] == 'iter'

    resumed_cfg = tiny_cfg('rcmae', tmp_path / 'b', **options)
    resumed_cfg.resume = True
    resumed_cfg.load_from = str(tmp_path / 'a' / 'epoch_1.pth')
    resumed = Runner.from_cfg(resumed_cfg)

    class Snapshot(Hook):
        def before_train(self, runner):  # after the checkpoint is loaded
            self.teacher = {
                k: v.clone()
                for k, v in runner.model.state_dict().items()
                if k.startswith(('teacher.', 'teacher_neck.'))
            }

    snapshot = Snapshot()
    resumed.register_hook(snapshot)
    resumed.train()
    for name, value in snapshot.teacher.items():
        assert torch.equal(value, epoch1['state_dict'][name]), name
    ema = hook(resumed, TeacherEMAHook)
    assert int(resumed.model.teacher_updates) == 4
    assert ema.last_momentum == pytest.approx(ema.end_momentum)
