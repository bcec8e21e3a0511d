# Copyright (c) OpenMMLab. All rights reserved.
"""MMEngine checkpoints load and resume with torch's weights-only loading."""
import io
import os.path as osp
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmsdae.utils import allow_mmengine_checkpoint_globals


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs)).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - torch.stack(labels))**2).mean())
        return out


class ToyDataset(Dataset):

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(16, 2, generator=gen)
        self.y = self.x.sum(1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return dict(inputs=self.x[idx], labels=self.y[idx])


class NotAllowed:
    """An arbitrary class: torch.load must keep refusing it."""

    def __init__(self):
        self.value = 1


def build_runner(work_dir, name, max_epochs=2, load_from=None, resume=False):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[1], by_epoch=True),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        load_from=load_from,
        resume=resume,
        randomness=dict(seed=0),
        default_scope='mmengine')


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
    """An uninterrupted 2-epoch run, checkpointing every epoch."""
    work_dir = tmp_path_factory.mktemp('full_run')
    runner = build_runner(work_dir, 'full_run')
    runner.train()
    weights = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return work_dir, weights


@pytest.mark.slow
def test_checkpoint_refused_without_allow_list(full_run):
    work_dir, _ = full_run
    # A fresh interpreter: this process' allow-list is global state.
    code = ('import pickle, sys, torch\n'
            'try:\n'
            '    torch.load(sys.argv[1])\n'
            'except pickle.UnpicklingError as e:\n'
            '    print("REFUSED", e)\n'
            'else:\n'
            '    print("LOADED")\n')
    proc = subprocess.run(
        [sys.executable, '-c', code,
         osp.join(work_dir, 'epoch_1.pth')],
        capture_output=True,
        text=True,
        timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('REFUSED'), proc.stdout
    assert 'Weights only load failed' in proc.stdout
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in proc.stdout


def test_checkpoint_loads_with_allow_list(full_run):
    work_dir, weights = full_run
    allowed = allow_mmengine_checkpoint_globals()
    assert HistoryBuffer in allowed
    for epoch in (1, 2):
        ckpt = torch.load(osp.join(work_dir, f'epoch_{epoch}.pth'))
        assert ckpt['meta']['epoch'] == epoch
        loss = ckpt['message_hub']['log_scalars']['train/loss']
        assert isinstance(loss, HistoryBuffer)
        assert np.isfinite(loss.mean())
        assert isinstance(ckpt['message_hub']['runtime_info']['eta'],
                          np.floating)
        assert 'optimizer' in ckpt and 'param_schedulers' in ckpt
    for key, value in weights.items():
        assert torch.equal(ckpt['state_dict'][key], value)


def test_allow_list_idempotent_and_noop_without_support(monkeypatch):
    first = allow_mmengine_checkpoint_globals()
    second = allow_mmengine_checkpoint_globals()
    assert first == second
    safe = torch.serialization.get_safe_globals()
    assert all(obj in safe for obj in first)
    # The real getattr is never allow-listed, only a restricted shim.
    assert getattr not in safe
    assert not any(isinstance(s, tuple) and s[0] is getattr for s in safe)

    monkeypatch.delattr(torch.serialization, 'add_safe_globals')
    assert allow_mmengine_checkpoint_globals() == []


def test_resume_matches_uninterrupted_run(full_run, tmp_path):
    work_dir, weights = full_run
    allow_mmengine_checkpoint_globals()
    runner = build_runner(
        tmp_path,
        'resumed_run',
        load_from=osp.join(work_dir, 'epoch_1.pth'),
        resume=True)
    runner.train()
    assert runner.epoch == 2 and runner.iter == 8
    assert osp.exists(osp.join(tmp_path, 'epoch_2.pth'))
    state = runner.model.state_dict()
    for key, value in weights.items():
        assert torch.equal(state[key], value), key


def test_other_globals_still_refused(tmp_path):
    allow_mmengine_checkpoint_globals()
    path = tmp_path / 'evil.pth'
    torch.save({'obj': NotAllowed(), 'w': torch.ones(2)}, path)
    with pytest.raises(pickle.UnpicklingError, match='NotAllowed'):
        torch.load(path)
    # weights_only=False still works for those who trust the file.
    assert torch.load(path, weights_only=False)['obj'].value == 1


class _GetattrPayload:
    """Pickles as ``getattr(target, name)``, e.g. to fish for callables."""

    def __init__(self, target, name):
        self.target, self.name = target, name

    def __reduce__(self):
        return getattr, (self.target, self.name)


@pytest.mark.parametrize('target,name', [
    (HistoryBuffer, '__init__'),
    (HistoryBuffer, 'update'),
    (np.ndarray, 'tofile'),
])
def test_getattr_restricted_to_history_buffer_statistics(
        tmp_path, target, name):
    allow_mmengine_checkpoint_globals()
    path = tmp_path / 'getattr.pth'
    torch.save({'f': _GetattrPayload(target, name)}, path)
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        torch.load(path)

    torch.save({'f': _GetattrPayload(HistoryBuffer, 'mean')}, path)
    assert torch.load(path)['f'] is HistoryBuffer.mean


def test_numpy1_checkpoint_names(tmp_path):
    """Checkpoints written under numpy 1.x name ``numpy.core.multiarray``."""
    allow_mmengine_checkpoint_globals()
    buffer = HistoryBuffer()
    buffer.update(1.0)
    buffer.update(2.0)
    raw = io.BytesIO()
    torch.save({'w': torch.ones(3), 'eta': np.float64(1.5), 'h': buffer}, raw)
    src = zipfile.ZipFile(io.BytesIO(raw.getvalue()))
    path = tmp_path / 'numpy1.pth'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith('data.pkl'):
                data = data.replace(b'numpy._core.multiarray\n',
                                    b'numpy.core.multiarray\n')
                assert b'numpy.core.multiarray\n_reconstruct' in data
                assert b'numpy.core.multiarray\nscalar' in data
            dst.writestr(info.filename, data)

    ckpt = torch.load(path)
    assert ckpt['eta'] == 1.5
    assert ckpt['h'].mean() == 1.5
    assert torch.equal(ckpt['w'], torch.ones(3))
