"""``--auto-scale-lr`` scales by the effective batch, processes x batch x
``optim_wrapper.accumulative_counts`` (Goyal et al.'s linear rule, as the
RC-MAE paper applies it to 256 x 8 GPUs x 2 accum_iter, Sec. A.1), through
the CLI's own merge and MMEngine's ``Runner.scale_lr``."""
import os.path as osp
import sys
import uuid

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from tool_loader import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SDAE = osp.join(REPO, 'configs', 'sdae',
                'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
BASE_LR, BASE_BATCH = 1.5e-3, 32  # the demo config's lr and base batch


@pytest.fixture(scope='module')
def train_tool():
    return load_tool('train.py')


def scaled_lr(tool, monkeypatch, tmp_path, batch, accum):
    monkeypatch.setattr(sys, 'argv', [
        'train.py', SDAE, '--auto-scale-lr', '--work-dir', str(tmp_path)])
    cfg = Config.fromfile(SDAE)
    cfg.merge_from_dict({
        'train_dataloader.batch_size': batch,
        'optim_wrapper.accumulative_counts': accum,
        'experiment_name': f'lr_{uuid.uuid4().hex}'})
    cfg = tool.merge_args(cfg, tool.parse_args())
    runner = Runner.from_cfg(cfg)
    wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(wrapper, runner.auto_scale_lr)
    return [group['lr'] for group in wrapper.optimizer.param_groups]


@pytest.mark.parametrize('batch, accum, ratio', [
    (32, 1, 1.0),   # 1 x 32 x 1 / 32
    (32, 2, 2.0),   # 1 x 32 x 2 / 32: was 1 (accumulation ignored)
    (8, 2, 0.5),    # 1 x 8 x 2 / 32: was 0.25
])
def test_auto_scale_lr_counts_accumulated_micro_batches(
        train_tool, monkeypatch, tmp_path, batch, accum, ratio):
    lrs = scaled_lr(train_tool, monkeypatch, tmp_path, batch, accum)
    assert lrs == pytest.approx([BASE_LR * ratio] * len(lrs))
