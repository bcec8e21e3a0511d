"""Runner-level checks on the CPU demo config: learning, summary, resume."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmsdae.engine import SdAETeacherEMAHook, TrainSummaryHook, \
    cosine_momentum

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'sdae',
                'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')


def demo_cfg(tmp_path, num_images, batch, max_epochs, **options):
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict({
        'work_dir': str(tmp_path),
        'train_dataloader.batch_size': batch,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.num_images': num_images,
        'train_cfg.max_epochs': max_epochs,
        'default_hooks.logger.interval': 1,
        'log_level': 'WARNING',
        **options
    })
    return cfg


def find_hook(runner, kind):
    return next(h for h in runner.hooks if isinstance(h, kind))


@pytest.mark.slow
def test_demo_loss_falls_when_overfitting_a_few_images(tmp_path):
    cfg = demo_cfg(tmp_path, num_images=8, batch=8, max_epochs=40,
                   **{'param_scheduler': [], 'optim_wrapper.optimizer.lr':
                      1e-3, 'default_hooks.checkpoint.interval': 40})
    runner = Runner.from_cfg(cfg)
    runner.train()
    summary = find_hook(runner, TrainSummaryHook).summary
    assert summary['iterations'] == 40
    # the student closes a clear part of the gap to the teacher targets
    assert summary['loss_end'] < 0.7 * summary['loss_start'], summary
    assert summary['images_per_second'] > 0
    assert summary['checkpoint'].endswith('epoch_40.pth')
    assert osp.isfile(summary['checkpoint'])
    assert int(runner.model.teacher_updates) == 40


class CrashAfterEpoch(Hook):
    """Simulate a job killed right after the checkpoint of ``epoch``."""
    priority = 'LOWEST'

    def __init__(self, epoch):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:
            raise KeyboardInterrupt('simulated crash')


@pytest.mark.slow
def test_stop_and_resume_continues_from_the_saved_state(tmp_path):
    cfg = demo_cfg(tmp_path, num_images=8, batch=4, max_epochs=4)
    cfg.default_hooks.checkpoint.interval = 1
    first = Runner.from_cfg(cfg)
    first.register_hook(CrashAfterEpoch(2))
    with pytest.raises(KeyboardInterrupt):
        first.train()
    ckpt = osp.join(tmp_path, 'epoch_2.pth')
    saved = torch.load(ckpt, map_location='cpu')  # weights_only loading
    assert saved['state_dict']['teacher_updates'].item() == 2
    assert saved['meta']['teacher_ema']['last_momentum'] == \
        pytest.approx(cosine_momentum(1, 4, 0.96, 0.99))

    cfg2 = demo_cfg(tmp_path, num_images=8, batch=4, max_epochs=4,
                    resume=True)
    second = Runner.from_cfg(cfg2)
    seen = {}

    class Probe(Hook):
        priority = 'HIGHEST'

        def before_train_epoch(self, runner):
            if 'epoch' not in seen:
                model = runner.model
                seen['epoch'] = runner.epoch
                seen['iter'] = runner.iter
                seen['updates'] = int(model.teacher_updates)
                seen['last_momentum'] = find_hook(
                    runner, SdAETeacherEMAHook).last_momentum
                seen['teacher'] = {
                    k: v.clone()
                    for k, v in model.teacher.state_dict().items()
                }
                seen['optim_steps'] = max(
                    s['step'].item() for s in runner.optim_wrapper
                    .optimizer.state.values())

    second.register_hook(Probe())
    calls = []
    original = second.model.momentum_update
    second.model.momentum_update = lambda m: (calls.append(m), original(m))
    second.train()

    assert seen['epoch'] == 2 and seen['iter'] == 4
    assert seen['updates'] == 2
    assert seen['last_momentum'] == pytest.approx(
        cosine_momentum(1, 4, 0.96, 0.99))
    assert seen['optim_steps'] == 4  # AdamW state came back too
    for name, value in seen['teacher'].items():
        torch.testing.assert_close(value,
                                   saved['state_dict']['teacher.' + name])
    assert calls == [pytest.approx(cosine_momentum(e, 4, 0.96, 0.99))
                     for e in (2, 3)]
    assert int(second.model.teacher_updates) == 4
