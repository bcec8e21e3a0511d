"""Exporting the student (default) or teacher encoder for downstream use."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'sdae_to_vit.py')


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize('encoder', ['student', 'teacher'])
def test_exported_encoder_loads_into_a_plain_vit(tmp_path, build_tiny,
                                                 encoder):
    model = build_tiny()
    with torch.no_grad():  # make student and teacher differ
        model.teacher.patch_embed.projection.weight.add_(1.0)
    src, dst = tmp_path / 'sdae.pth', tmp_path / 'vit.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), src)
    args = [str(src), str(dst)] + (['--encoder', 'teacher']
                                   if encoder == 'teacher' else [])
    result = run_tool(*args)
    assert result.returncode == 0, result.stderr

    vit = MODELS.build(dict(
        type='VisionTransformer',
        arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                  feedforward_channels=64),
        img_size=32, patch_size=8, out_type='raw',
        init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                      prefix='backbone.')))
    vit.init_weights()
    source = model.backbone if encoder == 'student' else model.teacher
    for name, value in source.state_dict().items():
        torch.testing.assert_close(vit.state_dict()[name], value)
    x = torch.randn(1, 3, 32, 32)
    model.eval()
    vit.eval()
    torch.testing.assert_close(vit(x)[0], source(x, mask=None)[0])


def test_refuses_a_checkpoint_without_the_encoder(tmp_path):
    src = tmp_path / 'other.pth'
    torch.save(dict(state_dict={'head.fc.weight': torch.zeros(2, 2)}), src)
    result = run_tool(str(src), str(tmp_path / 'out.pth'))
    assert result.returncode != 0
    assert 'no "backbone.*" keys' in result.stderr
    missing = run_tool(str(tmp_path / 'nope.pth'), str(tmp_path / 'o.pth'))
    assert missing.returncode != 0
    assert 'checkpoint not found' in missing.stderr
