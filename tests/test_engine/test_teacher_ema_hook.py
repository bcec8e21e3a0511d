"""EMA schedule (supplementary Sec. 1) and update cadence (Sec. 4.2)."""
import math

import pytest
import torch
from mmengine.hooks import Hook

from mmsdae.engine import SdAETeacherEMAHook, cosine_momentum


def test_momentum_first_middle_last_epoch_paper_schedule():
    # 0.96 -> 0.99 on a cosine over the epochs
    assert cosine_momentum(0, 300, 0.96, 0.99) == pytest.approx(0.96)
    assert cosine_momentum(299, 300, 0.96, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(150, 301, 0.96, 0.99) == pytest.approx(0.975)
    # a quarter of the way: 0.99 - 0.03 * (1 + cos(pi / 4)) / 2
    assert cosine_momentum(75, 301, 0.96, 0.99) == pytest.approx(
        0.99 - 0.03 * (1 + math.cos(math.pi / 4)) / 2)
    values = [cosine_momentum(e, 300, 0.96, 0.99) for e in range(300)]
    assert all(a <= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize('kwargs', [
    dict(momentum=1.0), dict(end_momentum=-0.1),
    dict(update_interval='batch'), dict(interval=0)])
def test_bad_hook_arguments(kwargs):
    with pytest.raises(ValueError):
        SdAETeacherEMAHook(**kwargs)


def ema_hook(runner):
    return next(h for h in runner.hooks
                if isinstance(h, SdAETeacherEMAHook))


@pytest.mark.parametrize('interval, updates', [('epoch', 2), ('iter', 6)])
def test_update_counts_per_epoch_vs_per_iteration(make_runner, tmp_path,
                                                  tiny_cfg, interval,
                                                  updates):
    runner = make_runner(
        tmp_path, tiny_cfg, max_epochs=2,
        hooks=dict(type='SdAETeacherEMAHook',
                      update_interval=interval))
    calls = []
    model = runner.model
    original = model.momentum_update
    model.momentum_update = lambda m: (calls.append(m), original(m))
    runner.train()
    assert len(calls) == updates == int(runner.model.teacher_updates)
    # 2 epochs: eta is 0.96 in epoch 0 and 0.99 in the last epoch
    per_epoch = updates // 2
    assert calls[:per_epoch] == [pytest.approx(0.96)] * per_epoch
    assert calls[per_epoch:] == [pytest.approx(0.99)] * per_epoch


def test_teacher_changes_only_at_epoch_ends(make_runner, tmp_path,
                                            tiny_cfg):
    runner = make_runner(
        tmp_path, tiny_cfg, max_epochs=1,
        hooks=dict(type='SdAETeacherEMAHook', update_interval='epoch'))
    model = runner.model
    snapshots = []

    class Spy(Hook):

        def after_train_iter(self, runner, *args, **kwargs):
            snapshots.append(model.teacher.patch_embed.projection.weight
                             .detach().clone())

    runner.register_hook(Spy(), priority='LOWEST')
    runner.train()
    # 3 iterations: the teacher is untouched during the epoch ...
    assert len(snapshots) == 3
    # (runner.train() re-initializes weights first, so compare snapshots)
    assert all(torch.equal(s, snapshots[0]) for s in snapshots)
    # ... and moves once at its end, by Eq. 7 with eta = 0.99 (1 epoch)
    after = model.teacher.patch_embed.projection.weight
    student = model.backbone.patch_embed.projection.weight
    torch.testing.assert_close(after, 0.99 * snapshots[0] + 0.01 * student)


def test_iteration_based_loop_is_refused(make_runner, tmp_path, tiny_cfg):
    runner = make_runner(
        tmp_path, tiny_cfg, max_epochs=1,
        hooks=dict(type='SdAETeacherEMAHook'),
        train_cfg=dict(by_epoch=False, max_iters=3))
    with pytest.raises(ValueError, match='epoch-based train loop'):
        runner.train()


@pytest.mark.parametrize('config, hook', [
    ('configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
     "dict(type='SdAETeacherEMAHook')"),
    ('configs/rcmae/rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
     "dict(type='TeacherEMAHook', momentum=0.996"),
])
def test_a_config_without_the_ema_hook_is_refused_at_start_up(config, hook):
    from mmengine.config import Config

    from mmsdae.utils.preflight import PreflightError, check_teacher_updates
    cfg = Config.fromfile(config)
    check_teacher_updates(cfg)  # the shipped config has its hook
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if 'TeacherEMAHook' not in h['type']]
    with pytest.raises(PreflightError, match='initial student') as err:
        check_teacher_updates(cfg)
    assert f'add {hook}' in str(err.value)


def test_models_without_an_ema_teacher_need_no_hook():
    from mmengine.config import Config

    from mmsdae.utils.preflight import check_teacher_updates
    cfg = Config.fromfile(
        'configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
    cfg.custom_hooks = []
    check_teacher_updates(cfg)


def record_updates(runner):
    """``[(iteration, momentum)]`` of every teacher update of ``runner``."""
    calls = []
    model = runner.model
    original = model.momentum_update
    model.momentum_update = lambda m: (calls.append((runner.iter, m)),
                                       original(m))
    return calls


def accumulating_runner(make_runner, tmp_path, tiny_cfg, hook, epochs=2):
    """8 images, batch 4: 2 iterations per epoch; 2 micro-batches per
    optimizer step."""
    return make_runner(
        tmp_path, tiny_cfg, max_epochs=epochs, hooks=hook, num_images=8,
        optim_wrapper=dict(
            constructor='TrainableOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-3),
            accumulative_counts=2))


PER_ITER = dict(type='TeacherEMAHook', momentum=0.9, end_momentum=0.99,
                update_interval='iter', schedule='iter')


@pytest.mark.parametrize('epochs, expected', [
    # 4 iterations = 2 optimizer steps: eta(0) = 0.9, eta(1) = 0.99
    (2, [(1, 0.9), (3, 0.99)]),
    # 6 iterations = 3 steps: the middle one is (0.9 + 0.99) / 2
    (3, [(1, 0.9), (3, 0.945), (5, 0.99)])])
def test_teacher_follows_optimizer_steps_under_accumulation(
        make_runner, tmp_path, tiny_cfg, epochs, expected):
    """SdAE Eq. 7 / RC-MAE Eq. 2 follow a gradient step: with
    accumulative_counts=2 the teacher moves after iterations 1, 3, ...
    (those that step the optimizer), and the per-iteration ramp counts
    optimizer steps."""
    runner = accumulating_runner(make_runner, tmp_path, tiny_cfg, PER_ITER,
                                 epochs)
    calls = record_updates(runner)
    student = []

    class Spy(Hook):  # after the EMA hook: did the optimizer step?
        def after_train_iter(self, runner, *args, **kwargs):
            student.append(runner.model.backbone.patch_embed.projection
                           .weight.detach().clone())

    runner.register_hook(Spy(), priority='LOWEST')
    runner.train()
    assert [i for i, _ in calls] == [i for i, _ in expected]
    assert [m for _, m in calls] == pytest.approx([m for _, m in expected])
    assert int(runner.model.teacher_updates) == len(expected)
    # the student changes on exactly the iterations the teacher follows
    changed = [i for i in range(1, len(student))
               if not torch.equal(student[i], student[i - 1])]
    assert changed == [i for i, _ in expected if i > 0]


def test_every_micro_batch_restores_the_per_batch_update(
        make_runner, tmp_path, tiny_cfg):
    runner = accumulating_runner(make_runner, tmp_path, tiny_cfg,
                                 dict(PER_ITER, every_micro_batch=True))
    calls = record_updates(runner)
    runner.train()
    # 4 updates on the ramp over 4 iterations: 0.99 - 0.09 (1 + cos) / 2
    assert [i for i, _ in calls] == [0, 1, 2, 3]
    assert [m for _, m in calls] == pytest.approx(
        [0.9, 0.99 - 0.09 * 0.75, 0.99 - 0.09 * 0.25, 0.99])


def test_per_epoch_update_is_unchanged_by_accumulation(
        make_runner, tmp_path, tiny_cfg):
    runner = accumulating_runner(make_runner, tmp_path, tiny_cfg,
                                 dict(type='SdAETeacherEMAHook'))
    calls = record_updates(runner)
    runner.train()
    # one update at the end of each epoch (runner.iter counts it done)
    assert calls == [(2, pytest.approx(0.96)), (4, pytest.approx(0.99))]
