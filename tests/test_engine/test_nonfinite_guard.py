"""A NaN / inf loss stops the run naming the iteration and the last good
checkpoint, or skips the optimizer step, by config (NonFiniteLossHook)."""
import os

import pytest
import torch
from mmengine.hooks import Hook

from mmsdae.engine import NonFiniteLossError, NonFiniteLossHook


def poison_loss(runner, at, value=float('nan')):
    """Make the model's loss ``value`` at the given 1-based iterations."""
    model, calls = runner.model, []
    original = model.loss

    def loss(*args, **kwargs):
        losses = original(*args, **kwargs)
        calls.append(1)
        if len(calls) in at:
            losses['loss'] = losses['loss'] * value
        return losses

    model.loss = loss


class Snapshots(Hook):
    """Trainable parameters before and after each iteration."""

    def __init__(self):
        self.before, self.after = {}, {}

    @staticmethod
    def params(runner):
        return [p.detach().clone() for p in runner.model.parameters()
                if p.requires_grad]

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before[runner.iter + 1] = self.params(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.after[runner.iter + 1] = self.params(runner)


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_stop_names_iteration_and_last_checkpoint(make_runner, tiny_cfg,
                                                  tmp_path):
    # 8 images, batch 4: epoch 1 (iterations 1-2) is saved, then NaN at 3.
    runner = make_runner(tmp_path, tiny_cfg, 3,
                         dict(type='NonFiniteLossHook'), num_images=8)
    poison_loss(runner, at={3})
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'iteration 3 (epoch 2)' in msg
    assert f'last good checkpoint is {tmp_path}/epoch_1.pth' in msg
    assert "action='skip'" in msg and 'clip_grad' in msg
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_stop_before_any_checkpoint(make_runner, tiny_cfg, tmp_path):
    runner = make_runner(tmp_path, tiny_cfg, 1,
                         dict(type='NonFiniteLossHook'))
    poison_loss(runner, at={1}, value=float('inf'))
    with pytest.raises(NonFiniteLossError,
                       match='iteration 1 .*no checkpoint was saved yet'):
        runner.train()


def test_skip_leaves_parameters_unchanged_and_continues(
        make_runner, tiny_cfg, tmp_path):
    snaps = Snapshots()
    runner = make_runner(tmp_path, tiny_cfg, 2,
                         dict(type='NonFiniteLossHook', action='skip'))
    runner.register_hook(snaps)
    poison_loss(runner, at={3})
    runner.train()
    assert runner.iter == 6  # 2 epochs x 3 iterations: training went on
    assert same(snaps.before[3], snaps.after[3])  # the NaN step was skipped
    assert not same(snaps.before[4], snaps.after[4])  # the next one was not
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
    assert hook.skipped == 1
    # The NaN loss of the skipped step is kept out of the logs.
    logged = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(logged) == 5 and all(map(torch.isfinite, map(torch.tensor,
                                                            logged)))


def test_skip_with_gradient_accumulation_drops_the_window(
        make_runner, tiny_cfg, tmp_path):
    snaps = Snapshots()
    runner = make_runner(
        tmp_path, tiny_cfg, 1, dict(type='NonFiniteLossHook', action='skip'),
        num_images=16,
        optim_wrapper=dict(constructor='TrainableOptimWrapperConstructor',
                           optimizer=dict(type='AdamW', lr=1e-3),
                           accumulative_counts=2))
    runner.register_hook(snaps)
    poison_loss(runner, at={3})  # first half of the window 3-4
    runner.train()
    assert same(snaps.before[3], snaps.after[4])
    assert not same(snaps.before[1], snaps.after[2])


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_skip_under_amp(make_runner, tiny_cfg, tmp_path, dtype):
    """``--amp`` (MixedPrecisionOptimWrapper; CPU autocast): the guard
    wraps its backward / step too. The NaN step is skipped (bf16 has no
    loss scaler that would skip it), the next one is taken."""
    snaps = Snapshots()
    runner = make_runner(
        tmp_path, tiny_cfg, 1, dict(type='NonFiniteLossHook', action='skip'),
        optim_wrapper=dict(type='MixedPrecisionOptimWrapper', dtype=dtype,
                           constructor='TrainableOptimWrapperConstructor',
                           optimizer=dict(type='AdamW', lr=1e-3)))
    runner.register_hook(snaps)
    poison_loss(runner, at={2})
    runner.train()
    assert same(snaps.before[2], snaps.after[2])
    assert not same(snaps.before[3], snaps.after[3])


def test_too_many_skips_in_a_row_stop(make_runner, tiny_cfg, tmp_path):
    runner = make_runner(
        tmp_path, tiny_cfg, 1,
        dict(type='NonFiniteLossHook', action='skip',
             max_consecutive_skips=1))
    poison_loss(runner, at={2, 3})
    with pytest.raises(NonFiniteLossError,
                       match='iteration 3 .*2 times in a row'):
        runner.train()


def test_bad_action():
    with pytest.raises(ValueError, match='action'):
        NonFiniteLossHook(action='ignore')


DDP_SCRIPT = r'''
import copy, json, os, sys
import torch
import torch.distributed as dist
sys.path.insert(0, sys.argv[1])  # tests/, for conftest.TINY_MODEL
from conftest import TINY_MODEL
from mmengine.config import Config
from mmengine.runner import Runner
import mmsdae
from mmsdae.engine import NonFiniteLossError, NonFiniteLossHook

action, work_dir = sys.argv[2], sys.argv[3]
dist.init_process_group('gloo')
rank = dist.get_rank()
runner = Runner.from_cfg(Config(dict(
    model=copy.deepcopy(TINY_MODEL), work_dir=work_dir, launcher='pytorch',
    model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                           device_ids=None, broadcast_buffers=False),
    env_cfg=dict(dist_cfg=dict(backend='gloo')),
    train_dataloader=dict(
        batch_size=2, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type='ProceduralShapesDataset', num_images=8,
                     image_size=32, pipeline=[dict(type='PackInputs')])),
    optim_wrapper=dict(constructor='TrainableOptimWrapperConstructor',
                       optimizer=dict(type='AdamW', lr=1e-3)),
    train_cfg=dict(by_epoch=True, max_epochs=1),
    custom_hooks=[dict(type='NonFiniteLossHook', action=action)],
    default_hooks=dict(checkpoint=None), default_scope='mmpretrain',
    randomness=dict(seed=0, diff_rank_seed=True), log_level='WARNING')))
model = runner.model.module
original, calls = model.loss, []
def loss(*args, **kwargs):
    losses = original(*args, **kwargs)
    calls.append(1)
    if rank == 0 and len(calls) == 2:  # NaN on one rank only
        losses['loss'] = losses['loss'] * float('nan')
    return losses
model.loss = loss
try:
    runner.train()
    result = 'finished'
except NonFiniteLossError as exc:
    result = 'stopped' if 'iteration 2' in str(exc) else str(exc)
hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
params = torch.cat([p.detach().flatten() for p in model.parameters()
                    if p.requires_grad])
gathered = [torch.zeros_like(params) for _ in range(2)]
dist.all_gather(gathered, params)
with open(os.path.join(work_dir, f'rank{rank}.json'), 'w') as f:
    json.dump(dict(result=result, skipped=hook.skipped, iters=runner.iter,
                   same=bool(torch.equal(gathered[0], gathered[1]))), f)
dist.destroy_process_group()
'''


@pytest.mark.slow
@pytest.mark.parametrize('action', ['skip', 'stop'])
def test_two_processes_act_together(tmp_path, action):
    """A NaN on one rank only: both ranks skip the step (and stay
    identical) or both stop; neither waits forever for the other."""
    import json
    import os.path as osp
    import socket
    import subprocess
    import sys
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    script = tmp_path / 'ddp_nan.py'
    script.write_text(DDP_SCRIPT)
    tests = osp.dirname(osp.dirname(osp.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_port', str(port), str(script), tests, action,
         str(tmp_path / 'work')],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    files = sorted((tmp_path / 'work').glob('rank*.json'))
    assert len(files) == 2, proc.stdout + proc.stderr
    results = [json.loads(f.read_text()) for f in files]
    for res in results:
        assert res['same']
        if action == 'skip':
            assert (res['result'], res['skipped'], res['iters']) == (
                'finished', 1, 2)
        else:
            assert res['result'] == 'stopped'
