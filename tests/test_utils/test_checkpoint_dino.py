"""DINO ViT checkpoints (Hybrid Distill appendix Table A3: DINO as T_c).

The layouts are those of facebookresearch/dino: the released backbone
(``dino_vitbase16_pretrain.pth``: timm ``VisionTransformer`` keys, no head)
and the full training checkpoint of ``main_dino.py`` (``teacher`` with
``backbone.`` / ``head.``, the DDP-wrapped ``student`` with ``module.``,
``optimizer``, ``epoch``, ``args``, ``dino_loss``), built here at a tiny
size. A mmpretrain ViT loaded from them must compute DINO's own forward
(written out below from DINO's ``vision_transformer.py``)."""
import argparse
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models import VisionTransformer

from mmsdae.utils.checkpoint import (TeacherCheckpointError,
                                     convert_checkpoint, detect_format,
                                     load_checkpoint_file,
                                     read_teacher_checkpoint,
                                     unwrap_state_dict)
from tool_loader import load_tool

DIMS, DEPTH, HEADS, IMG, PATCH = 32, 2, 2, 32, 8
ARCH = dict(embed_dims=DIMS, num_layers=DEPTH, num_heads=HEADS,
            feedforward_channels=4 * DIMS)


def dino_vit(seed):
    """Random weights under DINO's ViT names (timm's), no classifier."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, mean=0.0):
        return mean + 0.2 * torch.randn(*shape, generator=gen)

    state = {'cls_token': rand(1, 1, DIMS),
             'pos_embed': rand(1, 1 + (IMG // PATCH)**2, DIMS),
             'patch_embed.proj.weight': rand(DIMS, 3, PATCH, PATCH),
             'patch_embed.proj.bias': rand(DIMS),
             'norm.weight': rand(DIMS, mean=1.0), 'norm.bias': rand(DIMS)}
    for i in range(DEPTH):
        b = f'blocks.{i}.'
        state.update({
            b + 'norm1.weight': rand(DIMS, mean=1.0),
            b + 'norm1.bias': rand(DIMS),
            b + 'attn.qkv.weight': rand(3 * DIMS, DIMS),
            b + 'attn.qkv.bias': rand(3 * DIMS),
            b + 'attn.proj.weight': rand(DIMS, DIMS),
            b + 'attn.proj.bias': rand(DIMS),
            b + 'norm2.weight': rand(DIMS, mean=1.0),
            b + 'norm2.bias': rand(DIMS),
            b + 'mlp.fc1.weight': rand(4 * DIMS, DIMS),
            b + 'mlp.fc1.bias': rand(4 * DIMS),
            b + 'mlp.fc2.weight': rand(DIMS, 4 * DIMS),
            b + 'mlp.fc2.bias': rand(DIMS)})
    return state


def dino_head(seed):
    """DINOHead's tensors (MLP, weight-normed last layer)."""
    gen = torch.Generator().manual_seed(seed)
    return {'mlp.0.weight': torch.randn(64, DIMS, generator=gen),
            'mlp.0.bias': torch.zeros(64),
            'mlp.2.weight': torch.randn(16, 64, generator=gen),
            'mlp.2.bias': torch.zeros(16),
            'last_layer.weight_g': torch.ones(100, 1),
            'last_layer.weight_v': torch.randn(100, 16, generator=gen)}


def dino_forward(state, x):
    """DINO's ``VisionTransformer.forward`` without the final class-token
    pick: all tokens after the final norm (LayerNorm eps 1e-6)."""
    def ln(t, name):
        return F.layer_norm(t, (DIMS, ), state[name + '.weight'],
                            state[name + '.bias'], eps=1e-6)

    def linear(t, name):
        return F.linear(t, state[name + '.weight'], state[name + '.bias'])

    x = F.conv2d(x, state['patch_embed.proj.weight'],
                 state['patch_embed.proj.bias'], stride=PATCH)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state['cls_token'].expand(len(x), -1, -1), x], dim=1)
    x = x + state['pos_embed']
    for i in range(DEPTH):
        b = f'blocks.{i}.'
        B, N, C = x.shape
        qkv = linear(ln(x, b + 'norm1'), b + 'attn.qkv').reshape(
            B, N, 3, HEADS, C // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1) / math.sqrt(C // HEADS)).softmax(-1)
        y = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = x + linear(y, b + 'attn.proj')
        h = F.gelu(linear(ln(x, b + 'norm2'), b + 'mlp.fc1'))
        x = x + linear(h, b + 'mlp.fc2')
    return ln(x, 'norm')


@pytest.fixture
def dino_files(tmp_path):
    """(backbone-only release, full training checkpoint, teacher tensors,
    student tensors)."""
    teacher, student = dino_vit(0), dino_vit(1)
    release = tmp_path / 'dino_vitbase16_pretrain.pth'
    torch.save(teacher, release)
    full = tmp_path / 'checkpoint.pth'
    torch.save({
        'student': {**{f'module.backbone.{k}': v for k, v in student.items()},
                    **{f'module.head.{k}': v
                       for k, v in dino_head(2).items()}},
        'teacher': {**{f'backbone.{k}': v for k, v in teacher.items()},
                    **{f'head.{k}': v for k, v in dino_head(3).items()}},
        'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1,
                                                     'params': [0]}]},
        'epoch': 100,
        'args': argparse.Namespace(arch='vit_base', patch_size=16),
        'dino_loss': {'center': torch.zeros(1, 100)},
    }, full)
    return str(release), str(full), teacher, student


@pytest.mark.parametrize('which', ['release', 'full'])
def test_dino_teacher_loads_and_computes_dinos_forward(dino_files, which):
    release, full, teacher, _ = dino_files
    path = release if which == 'release' else full
    state = read_teacher_checkpoint(path, ['backbone'],
                                    config_key='model.teacher_c.checkpoint')
    assert state.src_format == ('timm' if which == 'release' else 'dino')
    backbone = state.parts['backbone']
    assert len(backbone) == len(teacher)  # every tensor, nothing random
    vit = VisionTransformer(arch=ARCH, img_size=IMG, patch_size=PATCH,
                            out_type='raw')
    vit.load_state_dict(backbone, strict=True)
    vit.eval()  # (mmpretrain's ``train()`` returns None)
    x = torch.randn(2, 3, IMG, IMG,
                    generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = vit(x)[-1]
    assert torch.allclose(ours, dino_forward(teacher, x), atol=1e-5)
    if which == 'full':  # the heads, the student, the loss centre: unused
        assert any(k.startswith('teacher.head.') for k in state.unused)
        assert any(k.startswith('student.module.backbone.')
                   for k in state.unused)
        assert 'dino_loss.center' in state.unused


def test_the_student_branch_and_wrong_parts(dino_files):
    _, full, teacher, student = dino_files
    state = read_teacher_checkpoint(full, ['backbone'],
                                    prefixes=dict(backbone='student.'))
    got = state.parts['backbone']['layers.1.ffn.layers.0.0.weight']
    assert torch.equal(got, student['blocks.1.mlp.fc1.weight'])
    assert not torch.equal(got, teacher['blocks.1.mlp.fc1.weight'])
    # a DINO backbone holds no MAE decoder: a G2SD-style teacher is refused
    with pytest.raises(TeacherCheckpointError, match='encoder only'):
        read_teacher_checkpoint(full, ['backbone', 'neck'])


def test_layout_detection_and_export(dino_files, tmp_path):
    release, full, teacher, student = dino_files
    assert detect_format(unwrap_state_dict(
        load_checkpoint_file(release))[0]) == 'timm'
    ckpt = load_checkpoint_file(full)
    assert detect_format(unwrap_state_dict(ckpt)[0]) == 'dino'
    out, report = convert_checkpoint(ckpt)
    assert (report.src_format, report.encoder) == ('dino', 'teacher')
    assert torch.equal(out['backbone.layers.0.attn.qkv.weight'],
                       teacher['blocks.0.attn.qkv.weight'])
    assert torch.equal(out['backbone.ln1.bias'], teacher['norm.bias'])
    assert len(out) == len(teacher)
    out, report = convert_checkpoint(ckpt, encoder='student')
    assert torch.equal(out['backbone.patch_embed.projection.weight'],
                       student['patch_embed.proj.weight'])
    # the command line: auto-detected, the teacher by default
    tool = load_tool('model_converters/sdae_to_vit.py')
    dst = tmp_path / 'dino_vit-b.pth'
    report = tool.main([full, str(dst)])
    assert (report.src_format, report.encoder) == ('dino', 'teacher')
    saved = torch.load(dst)['state_dict']
    assert torch.equal(saved['backbone.layers.1.ln2.weight'],
                       teacher['blocks.1.norm2.weight'])
