"""Exporting the student (default) or teacher encoder for downstream use."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmpretrain.registry import MODELS
from tool_loader import load_tool

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
    tool = load_tool(TOOL)
    from mmsdae.utils import extract_encoder
    assert tool.extract_encoder is extract_encoder  # still importable here
    with pytest.raises(SystemExit, match='no "backbone.\\*" keys'):
        tool.main([str(src), str(tmp_path / 'out.pth'), '--src-format',
                   'mmsdae'])
    with pytest.raises(SystemExit, match='no ViT encoder keys'):
        tool.main([str(src), str(tmp_path / 'out.pth')])
    with pytest.raises(SystemExit, match='checkpoint not found'):
        tool.main([str(tmp_path / 'nope.pth'), str(tmp_path / 'o.pth')])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['other.pth']


# --- in-process CLI (main([...])) ------------------------------------------

TINY_ARCH = dict(
    embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def write_det_config(path, img_size=32, checkpoint=''):
    """A downstream detection-style config: default_scope mmdet, the
    backbone an mmpretrain ViT (cross-scope), feature maps, no final norm."""
    backbone = dict(
        type='mmpretrain.VisionTransformer', arch=TINY_ARCH,
        img_size=img_size, patch_size=8, out_type='featmap',
        out_indices=(0, 1), final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                      prefix='backbone.'))
    path.write_text(
        "default_scope = 'mmdet'\n"
        "custom_imports = dict(imports=['mmsdae'], "
        'allow_failed_imports=False)\n'
        f"model = dict(type='MaskRCNN', backbone={backbone!r})\n")
    return str(path)


def timm_state(seed=0, dims=32, depth=2, mlp=64, grid=4, patch=8):
    """Random tensors under timm ViT names (MAE release layout)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {'cls_token': (1, 1, dims), 'pos_embed': (1, 1 + grid**2, dims),
              'patch_embed.proj.weight': (dims, 3, patch, patch),
              'patch_embed.proj.bias': (dims, ), 'norm.weight': (dims, ),
              'norm.bias': (dims, )}
    for i in range(depth):
        for name, shape in [('norm1', (dims, )), ('attn.qkv', (3 * dims, )),
                            ('attn.proj', (dims, )), ('norm2', (dims, )),
                            ('mlp.fc1', (mlp, )), ('mlp.fc2', (dims, ))]:
            shapes[f'blocks.{i}.{name}.bias'] = shape
        shapes.update({f'blocks.{i}.norm1.weight': (dims, ),
                       f'blocks.{i}.attn.qkv.weight': (3 * dims, dims),
                       f'blocks.{i}.attn.proj.weight': (dims, dims),
                       f'blocks.{i}.norm2.weight': (dims, ),
                       f'blocks.{i}.mlp.fc1.weight': (mlp, dims),
                       f'blocks.{i}.mlp.fc2.weight': (dims, mlp)})
    return {k: torch.randn(*s, generator=gen) for k, s in shapes.items()}


@pytest.fixture
def sdae_file(tmp_path, build_tiny):
    model = build_tiny()
    src = tmp_path / 'sdae.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), src)
    return model, str(src)


def test_cli_against_a_cross_scope_config(tmp_path, sdae_file, capsys):
    model, src = sdae_file
    dst = str(tmp_path / 'out' / 'vit.pth')
    config = write_det_config(tmp_path / 'det.py')
    load_tool(TOOL).main([src, dst, '--config', config])
    out = capsys.readouterr().out
    for expected in ['source format: mmsdae', 'encoder: student',
                     'tensors: 30', 'teacher.* (30)',
                     'checked against: VisionTransformer',
                     'missing in the checkpoint: none',
                     'unexpected (not loaded): ln1.bias, ln1.weight',
                     f'destination: {dst}']:
        assert expected in out, (expected, out)
    ckpt = torch.load(dst)  # weights-only loadable
    assert ckpt['meta']['src_format'] == 'mmsdae'

    # The detection config itself loads the result (mmdet scope).
    from mmsdae.utils import build_backbone_from_config
    loaded = build_backbone_from_config(
        write_det_config(tmp_path / 'det2.py', checkpoint=dst))
    loaded.init_cfg = dict(type='Pretrained', checkpoint=dst,
                           prefix='backbone.')
    loaded.init_weights()
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, model.backbone.state_dict()[name]), name


def test_cli_timm_release(tmp_path, capsys):
    timm = timm_state()
    model = {'module.' + k: v for k, v in timm.items()}
    model.update({'module.mask_token': torch.zeros(1, 1, 16),
                  'module.decoder_embed.weight': torch.zeros(16, 32),
                  'module.dist_token': torch.zeros(1, 1, 32)})
    src, dst = tmp_path / 'mae.pth', tmp_path / 'vit.pth'
    torch.save({'model': model}, src)
    tool = load_tool(TOOL)
    with pytest.raises(SystemExit, match='dist_token.*--allow-unknown'):
        tool.main([str(src), str(dst)])
    assert not dst.exists()
    tool.main([str(src), str(dst), '--allow-unknown', '--img-size', '64',
               '--interpolate-pos-embed'])
    out = capsys.readouterr().out
    assert 'source format: timm' in out
    assert 'decoder_embed.* (1), mask_token' in out
    assert 'dropped unknown keys (--allow-unknown): dist_token' in out
    assert 'interpolated from a 4x4 to a 8x8 patch grid' in out
    state = torch.load(dst)['state_dict']
    assert torch.equal(state['backbone.layers.1.ffn.layers.0.0.weight'],
                       timm['blocks.1.mlp.fc1.weight'])
    assert state['backbone.pos_embed'].shape == (1, 65, 32)


def test_cli_errors(tmp_path, sdae_file):
    _, src = sdae_file
    tool = load_tool(TOOL)
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(SystemExit, match=f'checkpoint not found: {missing}'):
        tool.main([missing, str(tmp_path / 'o.pth')])

    dst = tmp_path / 'vit.pth'
    config = write_det_config(tmp_path / 'det64.py', img_size=64)
    with pytest.raises(SystemExit, match='--interpolate-pos-embed'):
        tool.main([src, str(dst), '--config', config])
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'det64.py', 'sdae.pth']
    tool.main([src, str(dst), '--config', config, '--interpolate-pos-embed'])

    before = dst.read_bytes()
    with pytest.raises(SystemExit, match='destination exists.*--force'):
        tool.main([src, str(dst), '--encoder', 'teacher'])
    assert dst.read_bytes() == before
    report = tool.main([src, str(dst), '--encoder', 'teacher', '--force'])
    assert report.encoder == 'teacher'
    with pytest.raises(SystemExit, match='dst is the source'):
        tool.main([src, src, '--force'])

    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'\x00garbage')
    with pytest.raises(SystemExit, match='not a readable PyTorch checkpoint'):
        tool.main([str(corrupt), str(tmp_path / 'x.pth')])
    assert not (tmp_path / 'x.pth').exists()
