"""Mixed precision through tools/train.py (issue 16): ``--amp`` with
``--amp-dtype bfloat16`` trains without a loss scaler, ``float16`` with
one, and the teacher runs in the run's dtype. On the CPU (torch autocasts
both dtypes there), through the CLI's own argument parsing and config
merge, then MMEngine's Runner."""
import os.path as osp
import sys
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper
from mmengine.runner import Runner
from torch import nn

from conftest import TINY_DEMO_RUN
from mmsdae.engine.optimizers import MixedPrecisionOptimWrapper
from tool_loader import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SDAE = osp.join(REPO, 'configs', 'sdae',
                'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')


@pytest.fixture(scope='module')
def train_tool():
    return load_tool('train.py')


def _parse(tool, monkeypatch, *argv):
    monkeypatch.setattr(sys, 'argv', ['train.py', SDAE, *argv])
    return tool.parse_args()


def _train(tool, monkeypatch, work_dir, *argv):
    """One epoch of 2 iterations (8 images, batch 4) of the SdAE demo
    config through the CLI's merge; returns the runner and the output
    dtypes of the first qkv projection of the student and the teacher."""
    args = _parse(tool, monkeypatch, '--work-dir', str(work_dir), *argv)
    cfg = Config.fromfile(SDAE)
    cfg.merge_from_dict(dict(TINY_DEMO_RUN, **{
        'train_cfg.max_epochs': 1,
        'experiment_name': f'amp_{uuid.uuid4().hex}'}))
    cfg = tool.merge_args(cfg, args)
    runner = Runner.from_cfg(cfg)
    dtypes = dict(student=[], teacher=[])
    for name, encoder in (('student', runner.model.backbone),
                          ('teacher', runner.model.teacher)):
        encoder.layers[0].attn.qkv.register_forward_hook(
            lambda m, a, out, _name=name: dtypes[_name].append(out.dtype))
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss)), loss
    return runner, dtypes


def _saved_optimizer_state(work_dir):
    ckpt = torch.load(osp.join(str(work_dir), 'epoch_1.pth'),
                      map_location='cpu', weights_only=False)
    return ckpt['optimizer']


def test_bf16_amp_trains_without_loss_scaler_teacher_in_bf16(
        train_tool, monkeypatch, tmp_path):
    runner, dtypes = _train(train_tool, monkeypatch, tmp_path, '--amp',
                            '--amp-dtype', 'bfloat16')
    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, MixedPrecisionOptimWrapper)
    assert isinstance(wrapper, AmpOptimWrapper)  # MMEngine sees AMP
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.loss_scaler is None
    # 2 iterations: student and teacher both ran in bf16 each time
    assert dtypes == dict(student=[torch.bfloat16] * 2,
                          teacher=[torch.bfloat16] * 2)
    assert 'loss_scaler' not in _saved_optimizer_state(tmp_path)


def test_fp16_amp_scales_the_loss_and_the_teacher_follows(
        train_tool, monkeypatch, tmp_path):
    runner, dtypes = _train(train_tool, monkeypatch, tmp_path, '--amp',
                            '--amp-dtype', 'float16')
    wrapper = runner.optim_wrapper
    assert wrapper.cast_dtype == torch.float16
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    # teacher_amp_dtype's default follows the run (it was bf16 before)
    assert dtypes == dict(student=[torch.float16] * 2,
                          teacher=[torch.float16] * 2)
    assert 'scale' in _saved_optimizer_state(tmp_path)['loss_scaler']


def test_amp_dtype_default_and_bad_values(train_tool, monkeypatch, capsys):
    cfg = train_tool.merge_args(Config.fromfile(SDAE),
                                _parse(train_tool, monkeypatch, '--amp'))
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    if not torch.cuda.is_available():
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    with pytest.raises(SystemExit):
        _parse(train_tool, monkeypatch, '--amp', '--amp-dtype', 'fp8')
    assert "invalid choice: 'fp8'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(train_tool, monkeypatch, '--amp-dtype', 'float16')
    assert '--amp-dtype needs --amp' in capsys.readouterr().err
    # a config that already asks for AMP is not wrapped twice
    cfg = Config.fromfile(SDAE)
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    with pytest.raises(SystemExit, match='already uses AmpOptimWrapper'):
        train_tool.merge_args(cfg, _parse(train_tool, monkeypatch, '--amp'))


def _wrapper(**kwargs):
    model = nn.Linear(4, 1)
    return model, MixedPrecisionOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_wrapper_step_with_and_without_scaler():
    """bf16: the plain step on the loss as computed (no scale); fp16:
    GradScaler multiplies the loss by its initial 2**16 and divides the
    gradients back before the step, so the update is the same. (Values are
    powers of two, exact in both dtypes; a scaled gradient above fp16's
    65504 would make the scaler skip the step instead.)"""
    for dtype, scaled in (('bfloat16', False), ('float16', True)):
        model, wrapper = _wrapper(dtype=dtype)
        with torch.no_grad():
            model.weight.fill_(1.0)
            model.bias.zero_()
        inputs = torch.ones(2, 4)
        with wrapper.optim_context(model):
            out = model(inputs)
            assert out.dtype == getattr(torch, dtype)
            loss = out.float().sum() * 2.0**-10
        wrapper.update_params(loss)
        # loss = 2**-10 sum_i (w . x_i + b) -> dloss/dw_j = 2 * 2**-10;
        # SGD with lr 0.1
        expected = 1.0 - 0.1 * 2 * 2.0**-10
        assert torch.equal(model.weight, torch.full((1, 4), expected))
        assert (wrapper.loss_scaler is not None) == scaled
        if scaled:
            assert wrapper.loss_scaler.get_scale() == 2.0**16


def test_wrapper_bad_arguments_and_fp16_checkpoint():
    with pytest.raises(ValueError, match="dtype='float32'"):
        _wrapper(dtype='float32')
    with pytest.raises(TypeError, match='loss_scale'):
        _wrapper(loss_scale='always')
    # resuming a bf16 run from an fp16 checkpoint drops the scaler state
    _, fp16 = _wrapper(dtype='float16')
    _, bf16 = _wrapper(dtype='bfloat16')
    state = fp16.state_dict()
    assert 'loss_scaler' in state
    bf16.load_state_dict(state)
    assert 'loss_scaler' not in bf16.state_dict()


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU machine')
def test_mmengine_amp_wrapper_needs_a_gpu():
    """Why the wrapper exists: MMEngine 0.10.7's AmpOptimWrapper refuses the
    CPU (and scales the loss even for bf16)."""
    model = nn.Linear(4, 1)
    with pytest.raises(AssertionError, match='only available training'):
        AmpOptimWrapper(dtype='bfloat16', optimizer=torch.optim.SGD(
            model.parameters(), lr=0.1))
