# Copyright (c) OpenMMLab. All rights reserved.
"""The checkpoint module: reading, writing and converting SdAE / MAE / DINO
encoder checkpoints for downstream mmpretrain ViTs."""
import os
import pickle

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from mmsdae.utils import checkpoint as ckpt_io
from mmsdae.utils.checkpoint import (
    ConversionReport, build_backbone_from_config, check_against_backbone,
    check_consistency, convert_checkpoint, detect_format, extract_encoder,
    interpolate_pos_embed, load_checkpoint_file, save_checkpoint,
    timm_to_mmpretrain, unwrap_state_dict)

# The tiny SdAE of conftest.py: width 32, 2 blocks, 2 heads, MLP 64,
# 32 px images with 8 px patches (a 4 x 4 grid).
TINY_ARCH = dict(embed_dims=32,
                 num_layers=2,
                 num_heads=2,
                 feedforward_channels=64)
DIMS, DEPTH, HEADS, MLP, IMG, PATCH = 32, 2, 2, 64, 32, 8


def tiny_vit(**kwargs):
    """An mmpretrain VisionTransformer of the tiny SdAE's arch."""
    cfg = dict(arch=TINY_ARCH, img_size=IMG, patch_size=PATCH)
    cfg.update(kwargs)
    vit = VisionTransformer(**cfg)
    vit.eval()  # (mmpretrain's ``train()`` returns None)
    return vit


def timm_vit_state(depth=DEPTH,
                   dims=DIMS,
                   mlp=MLP,
                   img=IMG,
                   patch=PATCH,
                   final_norm='norm',
                   seed=0):
    """Random tensors under timm ``VisionTransformer`` names (as in MAE)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, mean=0.0):
        return mean + 0.2 * torch.randn(*shape, generator=gen)

    state = {
        'cls_token': rand(1, 1, dims),
        'pos_embed': rand(1, 1 + (img // patch)**2, dims),
        'patch_embed.proj.weight': rand(dims, 3, patch, patch),
        'patch_embed.proj.bias': rand(dims),
    }
    for i in range(depth):
        block = f'blocks.{i}.'
        state.update({
            block + 'norm1.weight': rand(dims, mean=1.0),
            block + 'norm1.bias': rand(dims),
            block + 'attn.qkv.weight': rand(3 * dims, dims),
            block + 'attn.qkv.bias': rand(3 * dims),
            block + 'attn.proj.weight': rand(dims, dims),
            block + 'attn.proj.bias': rand(dims),
            block + 'norm2.weight': rand(dims, mean=1.0),
            block + 'norm2.bias': rand(dims),
            block + 'mlp.fc1.weight': rand(mlp, dims),
            block + 'mlp.fc1.bias': rand(mlp),
            block + 'mlp.fc2.weight': rand(dims, mlp),
            block + 'mlp.fc2.bias': rand(dims),
        })
    if final_norm:  # 'norm' (pre-training) or 'fc_norm' (global pool)
        state[final_norm + '.weight'] = rand(dims, mean=1.0)
        state[final_norm + '.bias'] = rand(dims)
    return state


def mae_release(state):
    """Wrap like an MAE / SdAE release: DDP prefix, decoder, mask token."""
    model = {'module.' + k: v for k, v in state.items()}
    model.update({
        'module.mask_token': torch.zeros(1, 1, 16),
        'module.decoder_embed.weight': torch.zeros(16, DIMS),
        'module.decoder_pos_embed': torch.zeros(1, 17, 16),
        'module.decoder_blocks.0.norm1.weight': torch.ones(16),
        'module.decoder_blocks.0.attn.qkv.weight': torch.zeros(48, 16),
        'module.decoder_pred.weight': torch.zeros(3 * PATCH**2, 16),
    })
    return {'model': model}


def timm_vit_forward(sd, x, heads=HEADS, patch=PATCH, eps=1e-6):
    """Reference timm / MAE ViT forward from timm-named tensors."""
    tokens = F.conv2d(x,
                      sd['patch_embed.proj.weight'],
                      sd['patch_embed.proj.bias'],
                      stride=patch)
    tokens = tokens.flatten(2).transpose(1, 2)
    batch, dims = x.shape[0], tokens.shape[-1]
    tokens = torch.cat([sd['cls_token'].expand(batch, -1, -1), tokens], 1)
    tokens = tokens + sd['pos_embed']
    length = tokens.shape[1]

    def norm(t, name):
        return F.layer_norm(t, (dims, ), sd[name + '.weight'],
                            sd[name + '.bias'], eps)

    for i in range(sum(k.endswith('attn.qkv.weight') for k in sd)):
        b = f'blocks.{i}.'
        qkv = F.linear(norm(tokens, b + 'norm1'), sd[b + 'attn.qkv.weight'],
                       sd[b + 'attn.qkv.bias'])
        q, k, v = qkv.reshape(batch, length, 3, heads,
                              dims // heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (dims // heads)**-0.5).softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, length, dims)
        tokens = tokens + F.linear(out, sd[b + 'attn.proj.weight'],
                                   sd[b + 'attn.proj.bias'])
        hidden = F.gelu(
            F.linear(norm(tokens, b + 'norm2'), sd[b + 'mlp.fc1.weight'],
                     sd[b + 'mlp.fc1.bias']))
        tokens = tokens + F.linear(hidden, sd[b + 'mlp.fc2.weight'],
                                   sd[b + 'mlp.fc2.bias'])
    if 'norm.weight' in sd:
        tokens = norm(tokens, 'norm')
    return tokens, norm


def strip(state, prefix='backbone.'):
    return {k[len(prefix):]: v for k, v in state.items()}


def write_config(path, default_scope='mmdet', img_size=IMG, **backbone):
    """A downstream-style config: mmpretrain ViT inside another scope."""
    cfg = dict(type='mmpretrain.VisionTransformer',
               arch=TINY_ARCH,
               img_size=img_size,
               patch_size=PATCH,
               out_type='featmap',
               out_indices=(0, 1),
               final_norm=False,
               init_cfg=dict(type='Pretrained',
                             checkpoint='unused.pth',
                             prefix='backbone.'))
    cfg.update(backbone)
    path.write_text(f'default_scope = {default_scope!r}\n'
                    "custom_imports = dict(imports=['mmsdae'], "
                    'allow_failed_imports=False)\n'
                    f"model = dict(type='SomeDetector', backbone={cfg!r})\n")
    return str(path)


@pytest.fixture
def sdae_ckpt(tmp_path, build_tiny):
    """A saved tiny SdAE pre-training checkpoint (teacher != student)."""
    model = build_tiny()
    with torch.no_grad():
        for param in model.teacher.parameters():
            param.add_(0.5 * torch.randn_like(param))
    path = tmp_path / 'sdae.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    model.eval()
    return model, str(path)


# --- round trip of an mmsdae pre-training checkpoint --------------------


@pytest.mark.parametrize('encoder', ['student', 'teacher'])
def test_mmsdae_round_trip(sdae_ckpt, encoder):
    model, path = sdae_ckpt
    ckpt = load_checkpoint_file(path)
    assert detect_format(unwrap_state_dict(ckpt)[0]) == 'mmsdae'
    vit = tiny_vit(out_type='raw')
    state, report = convert_checkpoint(ckpt, encoder=encoder, backbone=vit)
    assert report.src_format == 'mmsdae' and report.encoder == encoder
    assert report.missing == [] and report.unexpected == []
    assert report.num_tensors == len(state) == len(vit.state_dict())
    other = 'teacher' if encoder == 'student' else 'backbone'
    assert any(k.startswith(other + '.') for k in report.ignored)
    assert 'neck.decoder_embed.weight' in report.ignored

    vit.load_state_dict(strip(state), strict=True)
    source = model.backbone if encoder == 'student' else model.teacher
    for name, value in source.state_dict().items():
        assert torch.equal(vit.state_dict()[name], value), name
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        torch.testing.assert_close(vit(x)[0], source(x, mask=False)[0])


def test_detection_style_target_reports_unused_final_norm(sdae_ckpt):
    _, path = sdae_ckpt
    vit = tiny_vit(out_type='featmap', out_indices=(0, 1), final_norm=False)
    _, report = convert_checkpoint(load_checkpoint_file(path), backbone=vit)
    assert report.missing == []
    assert report.unexpected == ['ln1.bias', 'ln1.weight']


def test_converted_file_is_accepted_again(sdae_ckpt, tmp_path):
    _, path = sdae_ckpt
    state, _ = convert_checkpoint(load_checkpoint_file(path))
    out = tmp_path / 'vit.pth'
    save_checkpoint(dict(state_dict=state, meta={}), str(out))
    again, report = convert_checkpoint(load_checkpoint_file(str(out)))
    assert report.src_format == 'mmsdae' and report.ignored == []
    assert again.keys() == state.keys()
    assert all(torch.equal(again[k], state[k]) for k in state)
    with pytest.raises(KeyError, match='no "teacher.\\*" keys'):
        convert_checkpoint(load_checkpoint_file(str(out)), encoder='teacher')


def test_extract_encoder_refuses_unknown_encoder():
    with pytest.raises(ValueError, match='choose one of'):
        extract_encoder({'backbone.x': torch.zeros(1)}, 'ema')


# --- timm / MAE release format -------------------------------------------


def test_timm_names_match_mmpretrain():
    """Every mapped name exists in an mmpretrain VisionTransformer."""
    arch = dict(embed_dims=96,
                num_layers=2,
                num_heads=3,
                feedforward_channels=384)
    converted, _, _ = timm_to_mmpretrain(
        timm_vit_state(dims=96, mlp=384, final_norm='norm'))
    vit = VisionTransformer(arch=arch,
                            img_size=32,
                            patch_size=8,
                            final_norm=True)
    assert converted.keys() == vit.state_dict().keys()
    converted, _, _ = timm_to_mmpretrain(
        timm_vit_state(dims=96, mlp=384, final_norm='fc_norm'))
    vit = VisionTransformer(arch=arch,
                            img_size=32,
                            patch_size=8,
                            final_norm=False,
                            out_type='avg_featmap')
    assert converted.keys() == vit.state_dict().keys()
    # timm's optional pre-norm (CLIP-style ViTs) -> mmpretrain's pre_norm.
    vit = VisionTransformer(arch=arch,
                            img_size=32,
                            patch_size=8,
                            pre_norm=True)
    assert 'pre_norm.weight' in vit.state_dict()
    assert timm_to_mmpretrain({'norm_pre.weight': torch.ones(1)})[0].keys() \
        == {'pre_norm.weight'}


def test_timm_release_converts_and_loads_strictly(tmp_path):
    timm = timm_vit_state()
    path = tmp_path / 'mae.pth'
    torch.save(mae_release(timm), path)
    ckpt = load_checkpoint_file(str(path))
    vit = tiny_vit(out_type='raw')
    state, report = convert_checkpoint(ckpt, backbone=vit)
    assert report.src_format == 'timm'
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.ignored) == [
        'decoder_blocks.0.attn.qkv.weight', 'decoder_blocks.0.norm1.weight',
        'decoder_embed.weight', 'decoder_pos_embed', 'decoder_pred.weight',
        'mask_token'
    ]
    vit.load_state_dict(strip(state), strict=True)
    expected = {
        'cls_token': 'cls_token',
        'pos_embed': 'pos_embed',
        'patch_embed.proj.weight': 'patch_embed.projection.weight',
        'blocks.0.norm1.weight': 'layers.0.ln1.weight',
        'blocks.0.attn.qkv.bias': 'layers.0.attn.qkv.bias',
        'blocks.1.attn.proj.weight': 'layers.1.attn.proj.weight',
        'blocks.1.norm2.bias': 'layers.1.ln2.bias',
        'blocks.1.mlp.fc1.weight': 'layers.1.ffn.layers.0.0.weight',
        'blocks.0.mlp.fc2.bias': 'layers.0.ffn.layers.1.bias',
        'norm.weight': 'ln1.weight',
    }
    for timm_key, mm_key in expected.items():
        assert torch.equal(vit.state_dict()[mm_key], timm[timm_key])
    assert 'decoder' in str(report) and 'source format: timm' in str(report)


def test_timm_forward_matches_mmpretrain():
    """The mapping is functionally right, not just name-compatible."""
    timm = timm_vit_state()
    converted, _, _ = timm_to_mmpretrain(timm)
    x = torch.randn(2, 3, IMG, IMG)
    tokens, _ = timm_vit_forward(timm, x)
    with torch.no_grad():
        cls_vit = tiny_vit(out_type='cls_token')
        cls_vit.load_state_dict(converted, strict=True)
        torch.testing.assert_close(cls_vit(x)[0], tokens[:, 0])
        map_vit = tiny_vit(out_type='featmap')
        map_vit.load_state_dict(converted, strict=True)
        featmap = tokens[:, 1:].reshape(2, IMG // PATCH, IMG // PATCH,
                                        DIMS).permute(0, 3, 1, 2)
        torch.testing.assert_close(map_vit(x)[0], featmap)

    # An MAE fine-tuned checkpoint: no final norm, global pool + fc_norm.
    timm = timm_vit_state(final_norm='fc_norm', seed=1)
    converted, _, _ = timm_to_mmpretrain(timm)
    tokens, norm = timm_vit_forward(timm, x)
    with torch.no_grad():
        vit = tiny_vit(out_type='avg_featmap', final_norm=False)
        vit.load_state_dict(converted, strict=True)
        torch.testing.assert_close(
            vit(x)[0], norm(tokens[:, 1:].mean(1), 'fc_norm'))


def test_timm_unknown_keys_fail_unless_allowed():
    timm = timm_vit_state()
    timm['dist_token'] = torch.zeros(1, 1, DIMS)
    timm['blocks.0.attn.q_norm.weight'] = torch.ones(DIMS)
    with pytest.raises(KeyError, match='dist_token.*--allow-unknown'):
        timm_to_mmpretrain(timm)
    converted, ignored, dropped = timm_to_mmpretrain(timm, allow_unknown=True)
    assert sorted(dropped) == ['blocks.0.attn.q_norm.weight', 'dist_token']
    assert 'dist_token' not in converted and ignored == []
    _, report = convert_checkpoint({'model': timm}, allow_unknown=True)
    assert 'dropped unknown keys' in str(report)


def test_timm_sub_module_needs_src_prefix():
    student, teacher = timm_vit_state(seed=0), timm_vit_state(seed=1)
    release = {
        'model': {
            **{
                'encoder.' + k: v
                for k, v in student.items()
            },
            **{
                'teacher.' + k: v
                for k, v in teacher.items()
            }
        }
    }
    assert detect_format(release['model']) == 'timm'
    with pytest.raises(ValueError,
                       match="'encoder.', 'teacher.'.*"
                       '--src-prefix'):
        convert_checkpoint(release)
    state, report = convert_checkpoint(release, src_prefix='teacher.')
    assert torch.equal(state['backbone.layers.1.ffn.layers.0.0.weight'],
                       teacher['blocks.1.mlp.fc1.weight'])
    assert report.src_prefix == 'teacher.'
    with pytest.raises(KeyError, match='no "ema.\\*" keys.*encoder'):
        convert_checkpoint(release, src_prefix='ema')
    with pytest.raises(ValueError, match='--src-prefix'):
        convert_checkpoint({'model': student}, encoder='teacher')


# --- wrong checkpoints -----------------------------------------------------


def test_classifier_checkpoint_is_refused(tmp_path):
    resnet = {
        'backbone.conv1.weight': torch.zeros(8, 3, 3, 3),
        'backbone.layer1.0.conv1.weight': torch.zeros(8, 8, 3, 3),
        'head.fc.weight': torch.zeros(10, 8),
    }
    with pytest.raises(ValueError, match=r'no ViT encoder keys.*backbone'):
        convert_checkpoint({'state_dict': resnet})
    with pytest.raises(ValueError, match='not a ViT encoder.*conv1'):
        convert_checkpoint({'state_dict': resnet}, src_format='mmsdae')
    with pytest.raises(KeyError, match='no "backbone.\\*" keys'):
        convert_checkpoint({'head.fc.weight': torch.zeros(2, 2)},
                           src_format='mmsdae')
    with pytest.raises(ValueError, match='no timm ViT encoder keys'):
        convert_checkpoint({'state_dict': resnet},
                           src_format='timm',
                           allow_unknown=True)


def test_different_width_or_depth_is_refused(sdae_ckpt):
    _, path = sdae_ckpt
    ckpt = load_checkpoint_file(path)
    wide = VisionTransformer(arch=dict(embed_dims=96,
                                       num_layers=2,
                                       num_heads=3,
                                       feedforward_channels=384),
                             img_size=IMG,
                             patch_size=PATCH)
    with pytest.raises(ValueError,
                       match=r'width 32, the VisionTransformer '
                       r'of width 96.*layers.0.attn.qkv.weight: checkpoint '
                       r'\(96, 32\), backbone \(288, 96\)'):
        convert_checkpoint(ckpt, backbone=wide)
    deep = tiny_vit(arch=dict(TINY_ARCH, num_layers=4))
    with pytest.raises(ValueError,
                       match='lacks.*layers.2.*2 blocks, '
                       'backbone: 4.*--allow-missing'):
        convert_checkpoint(ckpt, backbone=deep)
    _, report = convert_checkpoint(ckpt, backbone=deep, allow_missing=True)
    assert 'layers.3.ln2.weight' in report.missing


def test_check_against_backbone_reports_optional_norms():
    converted, _, _ = timm_to_mmpretrain(timm_vit_state(final_norm='norm'))
    state = {'backbone.' + k: v for k, v in converted.items()}
    result = check_against_backbone(
        state, tiny_vit(out_type='avg_featmap', final_norm=True))
    assert result['missing'] == ['ln2.bias', 'ln2.weight']
    assert result['unexpected'] == []
    resnet = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match='none of the .* matches'):
        check_against_backbone(state, resnet)


def test_check_consistency():
    converted, _, _ = timm_to_mmpretrain(timm_vit_state(depth=3))
    state = {'backbone.' + k: v for k, v in converted.items()}
    arch = check_consistency(state)
    assert arch['embed_dims'] == DIMS and arch['num_layers'] == 3
    assert arch['feedforward_channels'] == MLP
    assert arch['grid'] == (4, 4) and arch['num_extra_tokens'] == 1
    assert arch['patch_size'] == (PATCH, PATCH) and arch['final_norm']

    gap = {k: v for k, v in state.items() if '.layers.1.' not in k}
    with pytest.raises(ValueError, match=r'block indices \[0, 2\]'):
        check_consistency(gap)
    bad = dict(state)
    bad['backbone.layers.0.attn.qkv.weight'] = torch.zeros(2 * DIMS, DIMS)
    with pytest.raises(ValueError,
                       match=r'qkv.weight has shape \(64, 32\), '
                       r'expected \(96, 32\)'):
        check_consistency(bad)
    with pytest.raises(ValueError, match='not a ViT encoder'):
        check_consistency({'backbone.cls_token': torch.zeros(1, 1, 4)})


# --- pos_embed interpolation ---------------------------------------------


def test_interpolate_pos_embed():
    pos = torch.randn(1, 1 + 16, DIMS)
    assert interpolate_pos_embed(pos, 4) is pos  # same grid: identity
    bigger = interpolate_pos_embed(pos, (8, 8))
    assert bigger.shape == (1, 1 + 64, DIMS)
    assert torch.equal(bigger[:, :1], pos[:, :1])  # class-token row kept
    # Same as mmpretrain's loader and MAE (bicubic, align_corners=False).
    torch.testing.assert_close(bigger, resize_pos_embed(pos, (4, 4), (8, 8)))
    wide = interpolate_pos_embed(pos, (2, 6))
    assert wide.shape == (1, 1 + 12, DIMS)
    torch.testing.assert_close(
        interpolate_pos_embed(wide, (4, 4), old_grid=(2, 6)),
        resize_pos_embed(wide, (2, 6), (4, 4)))
    with pytest.raises(ValueError, match='not a square grid'):
        interpolate_pos_embed(wide, 4)


def test_pos_embed_mismatch_needs_the_flag(sdae_ckpt):
    _, path = sdae_ckpt
    ckpt = load_checkpoint_file(path)
    vit = tiny_vit(img_size=64, out_type='raw')
    with pytest.raises(ValueError,
                       match='4x4 .* 8x8.*--interpolate-pos-'
                       'embed'):
        convert_checkpoint(ckpt, backbone=vit)
    state, report = convert_checkpoint(ckpt, backbone=vit, interpolate=True)
    assert 'from a 4x4 to a 8x8' in report.pos_embed
    assert state['backbone.pos_embed'].shape == vit.pos_embed.shape
    source = ckpt['state_dict']['backbone.pos_embed']
    assert torch.equal(state['backbone.pos_embed'][:, 0], source[:, 0])
    vit.load_state_dict(strip(state), strict=True)

    # Without a config: the grid from --img-size / --patch-size.
    with pytest.raises(ValueError, match='--interpolate-pos-embed'):
        convert_checkpoint(ckpt, img_size=64)
    state, _ = convert_checkpoint(ckpt, img_size=64, interpolate=True)
    assert state['backbone.pos_embed'].shape == (1, 65, DIMS)
    state, report = convert_checkpoint(ckpt,
                                       img_size=32,
                                       patch_size=8,
                                       interpolate=True)
    assert torch.equal(state['backbone.pos_embed'], source)
    assert 'not interpolated' in report.pos_embed
    with pytest.raises(ValueError, match='needs a target grid'):
        convert_checkpoint(ckpt, interpolate=True)
    with pytest.raises(ValueError, match='patch size 8x8'):
        convert_checkpoint(ckpt, img_size=64, patch_size=16)
    with pytest.raises(ValueError, match='either a config'):
        convert_checkpoint(ckpt, backbone=vit, img_size=64)


# --- target from a downstream config (cross-scope) -----------------------


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_backbone_from_cross_scope_config(tmp_path, sdae_ckpt, scope):
    _, path = sdae_ckpt
    config = write_config(tmp_path / 'cfg.py', default_scope=scope)
    backbone = build_backbone_from_config(config)
    assert type(backbone) is VisionTransformer
    assert backbone.out_type == 'featmap' and not backbone.final_norm
    _, report = convert_checkpoint(load_checkpoint_file(path),
                                   backbone=backbone)
    assert report.unexpected == ['ln1.bias', 'ln1.weight']


def test_backbone_from_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.py'):
        build_backbone_from_config(str(tmp_path / 'nope.py'))
    config = write_config(tmp_path / 'bad.py', type='VisionTransformer')
    # mmdet has no VisionTransformer: the scope must be given.
    with pytest.raises(ValueError, match="cannot build .*'mmdet'"):
        build_backbone_from_config(config)
    (tmp_path / 'empty.py').write_text('model = dict(type="X")\n')
    with pytest.raises(ValueError, match='no model.backbone'):
        build_backbone_from_config(str(tmp_path / 'empty.py'))


# --- loading and saving files --------------------------------------------


def test_load_checkpoint_file_errors(tmp_path):
    """One reader, one error: ``CheckpointFileError`` "<path>: <reason>"
    (a missing file is also a ``FileNotFoundError``)."""
    with pytest.raises(FileNotFoundError, match='missing.pth: does not'):
        load_checkpoint_file(str(tmp_path / 'missing.pth'))
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'this is not a checkpoint')
    with pytest.raises(ckpt_io.CheckpointFileError,
                       match='corrupt.pth: is not a readable PyTorch '
                       'checkpoint.*looks like text'):
        load_checkpoint_file(str(corrupt))
    truncated = tmp_path / 'truncated.pth'
    torch.save({'model': timm_vit_state()}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(ckpt_io.CheckpointFileError,
                       match='truncated.pth: is truncated or corrupt'):
        load_checkpoint_file(str(truncated))
    pickled = tmp_path / 'pickled.pth'  # legacy format, cut short
    torch.save({'w': torch.ones(3)}, pickled,
               _use_new_zipfile_serialization=False)
    assert torch.equal(load_checkpoint_file(str(pickled))['w'], torch.ones(3))
    pickled.write_bytes(pickled.read_bytes()[:40])
    with pytest.raises(ckpt_io.CheckpointFileError,
                       match='not a readable PyTorch checkpoint'):
        load_checkpoint_file(str(pickled))
    tensor = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(ValueError, match='not a checkpoint dict'):
        load_checkpoint_file(str(tensor))
    with pytest.raises(ValueError, match='no state dict'):
        unwrap_state_dict({'epoch': 3})


def test_untrusted_objects_need_unsafe_load(tmp_path):
    path = tmp_path / 'with_args.pth'
    torch.save({'model': timm_vit_state(), 'args': ConversionReport()}, path)
    with pytest.raises(ValueError, match='if you trust the file, pass '
                       '--unsafe-load'):
        load_checkpoint_file(str(path), unsafe_fix='pass --unsafe-load')
    ckpt = load_checkpoint_file(str(path), weights_only=False)
    state, skipped = unwrap_state_dict(ckpt)
    assert 'blocks.0.mlp.fc1.weight' in state and skipped == []
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # the allow-list still refuses it
    # the argparse options of the MAE / DeiT / DINO releases are allowed
    import argparse
    torch.save({'model': {'w': torch.ones(1)},
                'args': argparse.Namespace(lr=0.1)}, path)
    assert load_checkpoint_file(str(path))['args'].lr == 0.1


def _failing_save(obj, f, *args, **kwargs):
    """torch.save that dies half-way through writing."""
    if hasattr(f, 'write'):
        f.write(b'PK\x03\x04 partial')
    else:
        with open(f, 'wb') as handle:
            handle.write(b'PK\x03\x04 partial')
    raise OSError('disk full (simulated)')


def test_save_checkpoint(tmp_path, monkeypatch):
    dst = tmp_path / 'vit.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(2)}}, str(dst))
    assert torch.equal(torch.load(dst)['state_dict']['w'], torch.ones(2))
    umask = os.umask(0)
    os.umask(umask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(FileExistsError, match='--force'):
        save_checkpoint({}, str(dst))
    before = dst.read_bytes()

    monkeypatch.setattr(torch, 'save', _failing_save)
    with pytest.raises(OSError, match='simulated'):
        save_checkpoint({'state_dict': {}}, str(dst), overwrite=True)
    assert dst.read_bytes() == before  # unchanged
    fresh = tmp_path / 'fresh.pth'
    with pytest.raises(OSError, match='simulated'):
        save_checkpoint({'state_dict': {}}, str(fresh))
    assert not fresh.exists()
    assert sorted(os.listdir(tmp_path)) == ['vit.pth']  # no temp file left
    with pytest.raises(FileNotFoundError, match='directory does not exist'):
        save_checkpoint({}, str(tmp_path / 'no' / 'x.pth'))


def test_report_summary(sdae_ckpt):
    _, path = sdae_ckpt
    _, report = convert_checkpoint(load_checkpoint_file(path))
    text = str(report)
    assert 'source format: mmsdae' in text and 'encoder: student' in text
    assert 'embed_dims=32, num_layers=2' in text
    assert 'neck.* (' in text and 'teacher.* (' in text
    assert 'internal consistency only' in text
    assert ckpt_io.OPTIONAL_TARGET_KEYS == ('ln1.', 'ln2.', 'dist_token')
