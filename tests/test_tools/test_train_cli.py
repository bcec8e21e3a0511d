# Copyright (c) OpenMMLab. All rights reserved.
"""End-to-end checks of tools/train.py and tools/test.py on a toy config."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')

# Every test runs the tools in a subprocess (about 4 s each on 2 cores).
pytestmark = pytest.mark.slow

TOY_MODULE = '''
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from torch.utils.data import Dataset


@MODELS.register_module()
class CliToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs)).squeeze(-1)
        labels = torch.stack(labels)
        if mode == 'loss':
            return dict(loss=((out - labels) ** 2).mean())
        return [dict(pred=o, gt=t) for o, t in zip(out, labels)]


@DATASETS.register_module()
class CliToyDataset(Dataset):

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(8, 2, generator=gen)
        self.y = self.x.sum(1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return dict(inputs=self.x[idx], labels=self.y[idx])


@METRICS.register_module()
class CliToyMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results += [float((s['pred'] - s['gt']) ** 2)
                         for s in data_samples]

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))
'''

TOY_CONFIG = '''
custom_imports = dict(imports=['mmsdae_cli_toy'], allow_failed_imports=False)
default_scope = 'mmengine'
model = dict(type='CliToyModel')
_loader = dict(
    dataset=dict(type='CliToyDataset'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    batch_size=4,
    num_workers=0)
train_dataloader = _loader
test_dataloader = _loader
test_evaluator = dict(type='CliToyMetric')
test_cfg = dict()
train_cfg = dict(by_epoch=True, max_epochs=1)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1),
    logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0)
'''


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    (root / 'mmsdae_cli_toy.py').write_text(textwrap.dedent(TOY_MODULE))
    (root / 'toy_config.py').write_text(textwrap.dedent(TOY_CONFIG))
    return root


def run(toy, script, *args):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(toy), REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    proc = subprocess.run([sys.executable, script, *map(str, args)],
                          cwd=str(toy),
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def trained(toy):
    """One epoch of training; returns the work dir."""
    work_dir = toy / 'work_dir'
    rc, log = run(toy, TRAIN, toy / 'toy_config.py', '--work-dir', work_dir)
    assert rc == 0, log
    return work_dir


def test_train_writes_checkpoint(trained):
    assert (trained / 'epoch_1.pth').is_file()
    assert (trained /
            'last_checkpoint').read_text().strip().endswith('epoch_1.pth')


def test_train_auto_resume_continues(toy, trained):
    rc, log = run(toy, TRAIN, toy / 'toy_config.py', '--work-dir', trained,
                  '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    assert rc == 0, log
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [1]' not in log  # epoch 1 is not trained again
    assert 'Epoch(train) [2]' in log
    assert (trained / 'epoch_2.pth').is_file()


def test_train_resume_from_path(toy, trained):
    work_dir = toy / 'from_path'
    rc, log = run(toy, TRAIN, toy / 'toy_config.py', '--work-dir', work_dir,
                  '--resume', trained / 'epoch_1.pth', '--cfg-options',
                  'train_cfg.max_epochs=2')
    assert rc == 0, log
    assert 'resumed epoch: 1' in log
    assert (work_dir / 'epoch_2.pth').is_file()


@pytest.mark.parametrize('case', ['config', 'resume'])
def test_train_missing_path(toy, case):
    missing = toy / f'no_such_{case}.py'
    if case == 'config':
        args = (missing, )
    else:
        args = (toy / 'toy_config.py', '--resume', missing)
    rc, log = run(toy, TRAIN, *args)
    assert rc != 0
    assert str(missing) in log
    assert 'not found' in log


def test_train_unknown_config_key_fails_at_start(toy):
    rc, log = run(toy, TRAIN, toy / 'toy_config.py', '--work-dir',
                  toy / 'typo', '--cfg-options',
                  'optim_wrapper.optimizer.momentun=0.9')
    assert rc != 0
    assert ("optim_wrapper.optimizer: unknown key 'momentun' for SGD; did "
            "you mean 'momentum'?") in log
    assert 'Traceback' not in log


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU machine')
def test_train_amp_on_cpu_is_bf16_without_loss_scaler(toy):
    """--amp also runs on a CPU (bf16 autocast, the default there; the
    toy's 'mmengine' scope finds the wrapper, registered in MMEngine's
    root registry); no loss-scaler state is saved."""
    rc, log = run(toy, TRAIN, toy / 'toy_config.py', '--work-dir', toy / 'amp',
                  '--amp')
    assert rc == 0, log
    ckpt = torch.load(toy / 'amp' / 'epoch_1.pth', map_location='cpu',
                      weights_only=False)
    assert 'loss_scaler' not in ckpt['optimizer']


def test_test_tool(toy, trained):
    out = toy / 'preds.pkl'
    rc, log = run(toy, TEST, toy / 'toy_config.py', trained / 'epoch_1.pth',
                  '--work-dir', toy / 'test_dir', '--out', out)
    assert rc == 0, log
    assert 'mse' in log and out.is_file()

    missing = toy / 'missing.pth'
    rc, log = run(toy, TEST, toy / 'toy_config.py', missing)
    assert rc != 0 and str(missing) in log
