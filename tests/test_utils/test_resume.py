"""Crash safety: atomic checkpoint writes, bad checkpoints named with their
problem, ``--resume-fallback``, and checkpoints of another architecture."""
import copy
import json
import multiprocessing
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook

from mmsdae.utils.checkpoint import files as atomic
from mmsdae.utils.resume import (CheckpointFileError, CheckpointMismatchError,
                                 check_checkpoint_file, check_state_dict_fits,
                                 list_checkpoints, resolve_resume_checkpoint)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def fake_checkpoint(path, epoch, value=1.0):
    """A small checkpoint with what resuming needs."""
    torch.save(dict(meta=dict(epoch=epoch, iter=3 * epoch),
                    state_dict={'w': torch.full((4, ), value)},
                    message_hub={}), path)
    return str(path)


@pytest.fixture
def work_dir(tmp_path):
    """epoch_1.pth, epoch_2.pth, last_checkpoint -> epoch_2.pth."""
    for epoch in (1, 2):
        fake_checkpoint(tmp_path / f'epoch_{epoch}.pth', epoch)
        os.utime(tmp_path / f'epoch_{epoch}.pth', (epoch, epoch))  # mtimes
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    return tmp_path


def truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


# ------------------------------------------------------------ atomic writes
def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dst = tmp_path / 'epoch_1.pth'
    atomic.atomic_write(dst, lambda f: f.write(b'old'))

    def half_then_fail(f):
        f.write(b'new, half written')
        raise KeyboardInterrupt('killed')

    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(dst, half_then_fail)
    assert dst.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['epoch_1.pth']
    umask = os.umask(0)
    os.umask(umask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~umask


def _write_and_get_killed(dst):
    def write(f):
        f.write(b'PK\x03\x04 half of a new checkpoint')
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    atomic.atomic_write(dst, write)


def test_sigkill_while_writing_leaves_the_previous_checkpoint(work_dir):
    """A real kill: no cleanup runs, the hidden temporary file stays, and
    neither it nor a partial file under the final name is resumed from."""
    before = (work_dir / 'epoch_2.pth').read_bytes()
    proc = multiprocessing.get_context('fork').Process(
        target=_write_and_get_killed, args=(str(work_dir / 'epoch_2.pth'), ))
    proc.start()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    assert (work_dir / 'epoch_2.pth').read_bytes() == before
    leftovers = [n for n in os.listdir(work_dir) if n.endswith('.tmp')]
    assert len(leftovers) == 1 and leftovers[0].startswith('.epoch_2.pth.')
    assert list_checkpoints(str(work_dir)) == [
        str(work_dir / 'epoch_2.pth'), str(work_dir / 'epoch_1.pth')]
    assert resolve_resume_checkpoint(str(work_dir)) == str(
        work_dir / 'epoch_2.pth')


class KillWhileSaving(Hook):
    """From epoch ``epoch`` on, the process dies while the checkpoint bytes
    (``part='checkpoint'``) or ``last_checkpoint`` are being written."""
    priority = 'HIGHEST'

    def __init__(self, epoch, part, monkeypatch):
        self.epoch, self.part, self.monkeypatch = epoch, part, monkeypatch

    def before_train_epoch(self, runner):
        if runner.epoch + 1 != self.epoch:
            return
        real = atomic.os.replace
        part = self.part

        def replace(src, dst):
            is_ckpt = dst.endswith('.pth')
            if is_ckpt == (part == 'checkpoint'):
                raise KeyboardInterrupt(f'killed while writing {dst}')
            return real(src, dst)

        self.monkeypatch.setattr(atomic.os, 'replace', replace)


@pytest.mark.parametrize('part', ['checkpoint', 'last_checkpoint'])
def test_kill_while_saving_keeps_previous_checkpoint_and_last_checkpoint(
        part, make_runner, tiny_cfg, tmp_path, monkeypatch):
    """With max_keep_ckpts=1 too: the one kept checkpoint is removed only
    once its successor and last_checkpoint are in place."""
    runner = make_runner(
        tmp_path, tiny_cfg, 3,
        [dict(type='SdAETeacherEMAHook'), KillWhileSaving(3, part, None)],
        num_images=4,
        default_hooks=dict(
            checkpoint=dict(type='AtomicCheckpointHook', interval=1,
                            max_keep_ckpts=1)))
    next(h for h in runner.hooks
         if isinstance(h, KillWhileSaving)).monkeypatch = monkeypatch
    with pytest.raises(KeyboardInterrupt, match='killed while writing'):
        runner.train()
    monkeypatch.undo()

    assert not (tmp_path / 'epoch_1.pth').exists()  # max_keep_ckpts holds
    previous = str(tmp_path / 'epoch_2.pth')
    assert (tmp_path / 'last_checkpoint').read_text() == previous
    check_checkpoint_file(previous)
    if part == 'checkpoint':  # no partial file under the final name
        assert not (tmp_path / 'epoch_3.pth').exists()
    else:  # the new checkpoint is complete; last_checkpoint still valid
        check_checkpoint_file(str(tmp_path / 'epoch_3.pth'))
    # no temporary file or scratch folder left behind
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.')]
    assert resolve_resume_checkpoint(str(tmp_path)) == previous


# ----------------------------------------------------- bad checkpoint files
@pytest.mark.parametrize('content, reason', [
    (b'', 'is empty'),
    (b'\x8f\x12random bytes\x00\x01' * 20,
     'is not a readable PyTorch checkpoint'),
    (json.dumps({'epoch': 3}).encode(), 'looks like JSON'),
    (b'PK\x03\x04' + b'\x00' * 50, 'truncated or corrupt'),
])
def test_foreign_and_empty_files_are_named_with_the_problem(
        tmp_path, content, reason):
    path = tmp_path / 'epoch_3.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointFileError, match=reason) as exc:
        check_checkpoint_file(str(path))
    assert str(path) in str(exc.value)


def test_truncated_checkpoint_is_named(work_dir):
    truncate(work_dir / 'epoch_2.pth')
    with pytest.raises(CheckpointFileError) as exc:
        check_checkpoint_file(str(work_dir / 'epoch_2.pth'))
    assert str(work_dir / 'epoch_2.pth') in str(exc.value)
    assert 'truncated' in str(exc.value)


def test_weights_only_and_pickled_objects_cannot_be_resumed(tmp_path):
    weights = tmp_path / 'vit.pth'
    torch.save(dict(state_dict={'w': torch.ones(2)}, meta={}), weights)
    with pytest.raises(CheckpointFileError, match='holds weights only'):
        check_checkpoint_file(str(weights))
    check_checkpoint_file(str(weights), for_resume=False)  # loadable
    module = tmp_path / 'module.pth'
    torch.save(torch.nn.Linear(2, 2), module)
    with pytest.raises(CheckpointFileError, match='weights_only'):
        check_checkpoint_file(str(module))


def test_resume_fails_naming_the_file_unless_fallback(work_dir):
    truncate(work_dir / 'epoch_2.pth')
    with pytest.raises(CheckpointFileError) as exc:
        resolve_resume_checkpoint(str(work_dir))
    message = str(exc.value)
    assert str(work_dir / 'epoch_2.pth') in message
    assert 'truncated' in message and '--resume-fallback' in message

    logged = []
    chosen = resolve_resume_checkpoint(str(work_dir), fallback=True,
                                       log=logged.append)
    assert chosen == str(work_dir / 'epoch_1.pth')
    assert 'epoch_2.pth' in logged[0] and 'epoch_1.pth' in logged[-1]


def test_fallback_takes_an_older_checkpoint_never_a_newer_one(work_dir):
    fake_checkpoint(work_dir / 'epoch_3.pth', 3)
    os.utime(work_dir / 'epoch_3.pth', (3, 3))
    (work_dir / 'epoch_2.pth').write_text('{"not": "a checkpoint"}')
    chosen = resolve_resume_checkpoint(
        str(work_dir), str(work_dir / 'epoch_2.pth'), fallback=True,
        log=lambda _: None)
    assert chosen == str(work_dir / 'epoch_1.pth')


def test_fallback_without_a_good_checkpoint_lists_the_bad_ones(work_dir):
    truncate(work_dir / 'epoch_1.pth')
    truncate(work_dir / 'epoch_2.pth')
    with pytest.raises(CheckpointFileError, match='no good previous') as exc:
        resolve_resume_checkpoint(str(work_dir), fallback=True,
                                  log=lambda _: None)
    assert 'epoch_1.pth' in str(exc.value)


def test_empty_or_dangling_last_checkpoint(work_dir):
    (work_dir / 'last_checkpoint').write_text('')
    with pytest.raises(CheckpointFileError, match='last_checkpoint: is empty'):
        resolve_resume_checkpoint(str(work_dir))
    assert resolve_resume_checkpoint(
        str(work_dir), fallback=True,
        log=lambda _: None) == str(work_dir / 'epoch_2.pth')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'gone.pth'))
    with pytest.raises(CheckpointFileError, match='gone.pth: does not exist'):
        resolve_resume_checkpoint(str(work_dir))


def test_auto_resume_without_last_checkpoint_starts_a_new_run(tmp_path):
    assert resolve_resume_checkpoint(str(tmp_path)) is None


# ------------------------------------------------ another architecture
def test_state_dict_check_names_shapes_and_keys():
    model = {'backbone.pos_embed': torch.zeros(1, 17, 32),
             'backbone.w': torch.zeros(3), 'head.w': torch.zeros(2)}
    ckpt = {'backbone.pos_embed': torch.zeros(1, 197, 768),
            'backbone.w': torch.zeros(3), 'neck.w': torch.zeros(1)}
    for strict in (True, False):
        with pytest.raises(CheckpointMismatchError) as exc:
            check_state_dict_fits(model, ckpt, strict, path='ckpt.pth')
        message = str(exc.value)
        assert 'ckpt.pth does not fit' in message
        assert ('backbone.pos_embed: checkpoint (1, 197, 768), model '
                '(1, 17, 32)') in message
        assert 'head.w' in message and 'neck.w' in message

    # loading another model's matching subset is allowed, resuming is not
    partial = {'backbone.w': torch.zeros(3)}
    check_state_dict_fits(model, partial, strict=False)
    with pytest.raises(CheckpointMismatchError, match='missing'):
        check_state_dict_fits(model, partial, strict=True)
    # load_from may bring another grid of a ViT pos_embed (it is resized)
    grid = dict(model, **{'backbone.pos_embed': torch.zeros(1, 50, 32)})
    check_state_dict_fits(model, grid, strict=False,
                          resizable=['backbone.pos_embed'])
    with pytest.raises(CheckpointMismatchError, match='pos_embed'):
        check_state_dict_fits(model, grid, strict=True,
                              resizable=['backbone.pos_embed'])
    # a backbone-only checkpoint given as load_from
    with pytest.raises(CheckpointMismatchError, match='init_cfg'):
        check_state_dict_fits(model, {'w': torch.zeros(3)}, strict=False)


def _train_one_epoch(make_runner, model, work_dir):
    make_runner(work_dir, model, 1,
                [dict(type='SdAETeacherEMAHook')]).train()
    return str(work_dir / 'epoch_1.pth')


def _wider(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg)
    cfg['backbone']['arch']['embed_dims'] = 48
    cfg['neck'].update(embed_dim=48, predict_feature_dim=48)
    return cfg


@pytest.mark.parametrize('how', ['resume', 'load_from'])
def test_checkpoint_of_another_architecture_is_an_error(
        how, make_runner, tiny_cfg, tmp_path):
    ckpt = _train_one_epoch(make_runner, tiny_cfg, tmp_path / 'a')
    runner = make_runner(
        tmp_path / 'b', _wider(tiny_cfg), 2,
        [dict(type='SdAETeacherEMAHook'),
         dict(type='CheckpointCompatibilityHook')],
        load_from=ckpt, resume=how == 'resume')
    with pytest.raises(CheckpointMismatchError) as exc:
        runner.train()
    message = str(exc.value)
    assert f'checkpoint {ckpt} does not fit the SdAE model' in message
    assert 'backbone.pos_embed: checkpoint (1, 17, 32), model (1, 17, 48)' \
        in message
    assert "checkpoint['meta']['cfg']" in message


def test_resume_needs_every_tensor_load_from_does_not(make_runner, tiny_cfg,
                                                      tmp_path):
    ckpt = _train_one_epoch(make_runner, tiny_cfg, tmp_path / 'a')
    deeper = copy.deepcopy(tiny_cfg)
    deeper['neck']['decoder_depth'] = 2
    hooks = [dict(type='SdAETeacherEMAHook'),
             dict(type='CheckpointCompatibilityHook')]
    runner = make_runner(tmp_path / 'b', deeper, 2, hooks, load_from=ckpt,
                         resume=True)
    with pytest.raises(CheckpointMismatchError,
                       match=r'model tensors are missing .*neck\.decoder'):
        runner.train()
    # initializing a deeper decoder from the checkpoint is allowed
    make_runner(tmp_path / 'c', deeper, 1, hooks, load_from=ckpt).train()


# -------------------------------------------------------------- tools/train
TINY_CONFIG = '''
custom_imports = dict(imports=['mmsdae'], allow_failed_imports=False)
default_scope = 'mmpretrain'
_base_ = {runtime!r}
model = {model!r}
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ProceduralShapesDataset', num_images=8,
                 image_size=32,
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='PackInputs')]))
optim_wrapper = dict(constructor='TrainableOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=1e-3))
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)
custom_hooks = [dict(type='SdAETeacherEMAHook')]
default_hooks = dict(logger=dict(interval=1))
'''


def train(config, work_dir, *args):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), str(config),
         '--work-dir', str(work_dir), *map(str, args)],
        cwd=str(work_dir.parent), env=env, capture_output=True, text=True,
        timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def cli_run(tmp_path_factory):
    """A config and a finished 2-epoch run of it (epoch_1, epoch_2)."""
    from conftest import TINY_MODEL
    root = tmp_path_factory.mktemp('cli')
    config = root / 'tiny_sdae.py'
    config.write_text(TINY_CONFIG.format(
        runtime=osp.join(REPO, 'configs', '_base_', 'default_runtime.py'),
        model=TINY_MODEL))
    rc, log = train(config, root / 'work')
    assert rc == 0, log
    return config, root / 'work'


def copy_run(cli_run, tmp_path):
    """A copy of the finished run, with last_checkpoint pointing into it."""
    config, source = cli_run
    work = tmp_path / 'work'
    work.mkdir()
    for epoch in (1, 2):
        (work / f'epoch_{epoch}.pth').write_bytes(
            (source / f'epoch_{epoch}.pth').read_bytes())
        os.utime(work / f'epoch_{epoch}.pth', (epoch, epoch))
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    return config, work


@pytest.mark.slow
def test_cli_truncated_checkpoint_fails_then_falls_back(cli_run, tmp_path):
    config, work = copy_run(cli_run, tmp_path)
    truncate(work / 'epoch_2.pth')
    options = ('--cfg-options', 'train_cfg.max_epochs=3')

    rc, log = train(config, work, '--resume', *options)
    assert rc != 0
    assert f'{work / "epoch_2.pth"}: is truncated or corrupt' in log
    assert '--resume-fallback' in log and 'Traceback' not in log

    rc, log = train(config, work, '--resume', '--resume-fallback', *options)
    assert rc == 0, log
    assert f'resuming from {work / "epoch_1.pth"} instead' in log
    assert 'resumed epoch: 1' in log
    check_checkpoint_file(str(work / 'epoch_2.pth'))  # rewritten, whole
    assert (work / 'last_checkpoint').read_text().endswith('epoch_3.pth')


@pytest.mark.slow
def test_cli_foreign_file_and_other_architecture(cli_run, tmp_path):
    config, work = copy_run(cli_run, tmp_path)
    foreign = tmp_path / 'model.pth'
    foreign.write_text(json.dumps({'state_dict': {}}))
    rc, log = train(config, work, '--resume', foreign)
    assert rc != 0 and 'Traceback' not in log
    assert f'{foreign}: is not a readable PyTorch checkpoint' in log
    assert 'looks like JSON' in log

    rc, log = train(config, tmp_path / 'wide', '--cfg-options',
                    f'load_from={work / "epoch_2.pth"}',
                    'model.backbone.arch.embed_dims=48',
                    'model.neck.embed_dim=48',
                    'model.neck.predict_feature_dim=48')
    assert rc != 0 and 'Traceback' not in log
    assert f'checkpoint {work / "epoch_2.pth"} does not fit' in log
    assert 'backbone.pos_embed: checkpoint (1, 17, 32), model (1, 17, 48)' \
        in log
