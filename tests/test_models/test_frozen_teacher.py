"""Frozen pre-trained teachers (issue 8, part 1): loaded from local files in
each layout, every missing key refused (the encoder-only MAE release as a
G2SD teacher in particular), frozen, out of the optimizer and the
checkpoints, untouched by init_weights and by loading."""
import argparse

import pytest
import torch
from mmpretrain.registry import MODELS
from tiny_teachers import (TEACHER_DECODER, build_g2sd, g2sd_cfg,  # noqa
                           teacher_cfg, tiny_mae)

from mmsdae.models.utils.frozen_teacher import (FrozenTeacher,
                                                build_frozen_teacher,
                                                detached_frozen_teachers)
from mmsdae.utils.checkpoint import TeacherCheckpointError

# facebookresearch/mae ``models_mae.py`` names, written out by hand (the
# inverse of what the loader maps), for an mmpretrain MAE state dict.
ENCODER_TO_OFFICIAL = [
    ('patch_embed.projection.', 'patch_embed.proj.'),
    ('ffn.layers.0.0.', 'mlp.fc1.'),
    ('ffn.layers.1.', 'mlp.fc2.'),
    ('layers.', 'blocks.'),
    ('.ln1.', '.norm1.'),
    ('.ln2.', '.norm2.'),
]
DECODER_TO_OFFICIAL = [
    ('.ln1.', '.norm1.'),
    ('.ln2.', '.norm2.'),
    ('ffn.layers.0.0.', 'mlp.fc1.'),
    ('ffn.layers.1.', 'mlp.fc2.'),
]


def official_mae_state(mmpretrain_state, with_decoder=True):
    """An mmpretrain MAE state dict in the official MAE training layout
    (timm encoder keys + decoder_* / mask_token)."""
    out = {}
    for key, value in mmpretrain_state.items():
        part, name = key.split('.', 1)
        if part == 'backbone':
            if name.startswith('ln1.'):
                name = 'norm.' + name[len('ln1.'):]
            for src, dst in ENCODER_TO_OFFICIAL:
                name = name.replace(src, dst)
        elif part == 'neck':
            if not with_decoder:
                continue
            if name.startswith('ln1.'):
                name = 'decoder_norm.' + name[len('ln1.'):]
            for src, dst in DECODER_TO_OFFICIAL:
                name = name.replace(src, dst)
        else:
            continue
        out[name] = value
    return out


def test_loads_an_mmpretrain_mae_checkpoint_frozen_and_in_eval(tiny_mae):
    mae, path = tiny_mae
    teacher = build_frozen_teacher(teacher_cfg(path))
    assert isinstance(teacher, FrozenTeacher)
    assert teacher.load_report['src_format'] == 'mmpretrain'
    assert teacher.load_report['unused'] == []  # the MAE head has no tensor
    source = mae.state_dict()
    for key, value in teacher.teacher_state_dict().items():
        assert torch.equal(value, source[key]), key
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not any(m.training for m in teacher.modules())
    # checkpoints keep only the fingerprint
    assert list(teacher.state_dict()) == ['fingerprint']


def test_official_mae_training_checkpoint_gives_the_source_outputs(
        tiny_mae, tmp_path):
    """The official layout ({'model': ...}, timm encoder keys, decoder_*,
    DDP's module. prefix) maps onto mmpretrain's MAEViT /
    MAEPretrainDecoder: the same encoder features and decoder outputs as
    the model it was written from."""
    mae, _ = tiny_mae
    official = official_mae_state(mae.state_dict())
    assert 'decoder_blocks.3.mlp.fc1.weight' in official
    assert 'blocks.1.norm2.bias' in official and 'norm.weight' in official
    path = tmp_path / 'mae_official.pth'
    # as facebookresearch/mae misc.save_model writes it (argparse options
    # included, which weights-only loading accepts for teacher files)
    torch.save({'model': {'module.' + k: v for k, v in official.items()},
                'optimizer': {'state': {}, 'param_groups': []},
                'epoch': 1599, 'scaler': {'scale': 65536.0},
                'args': argparse.Namespace(model='mae_vit_base_patch16',
                                           mask_ratio=0.75)}, path)
    teacher = build_frozen_teacher(teacher_cfg(path))
    assert teacher.load_report['src_format'] == 'timm'
    assert teacher.load_report['unused'] == []

    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = mae.backbone(x, mask=None)[-1]
        got = teacher.backbone(x, mask=None)[-1]
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        latent, _, ids_restore = mae.backbone(x)
        want = mae.neck(latent, ids_restore)
        got = teacher.neck(latent, ids_restore)
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize('layout', ['official', 'mmpretrain'])
def test_encoder_only_checkpoint_is_refused_as_a_g2sd_teacher(
        tiny_mae, tmp_path, layout):
    """The public MAE release (mae_pretrain_vit_base.pth: timm encoder keys,
    no decoder) and an exported encoder (backbone.* only) have no decoder:
    refused with a message that says so and what to use."""
    mae, _ = tiny_mae
    if layout == 'official':
        ckpt = {'model': official_mae_state(mae.state_dict(),
                                            with_decoder=False)}
    else:
        ckpt = {'state_dict': {k: v for k, v in mae.state_dict().items()
                               if k.startswith('backbone.')}}
    path = tmp_path / 'mae_pretrain_vit_tiny.pth'
    torch.save(ckpt, path)
    with pytest.raises(TeacherCheckpointError) as info:
        MODELS.build(g2sd_cfg(path))
    message = str(info.value)
    assert 'encoder only' in message and 'no MAE decoder' in message
    assert 'needs its decoder' in message
    assert 'full MAE training checkpoint' in message
    assert 'mae_pretrain_vit_base.pth' in message
    assert 'model.teacher.checkpoint' in message


def test_encoder_only_file_is_fine_for_an_encoder_teacher(tiny_mae,
                                                          tmp_path):
    """Hybrid Distill's teachers are encoders: the same file loads into a
    backbone-only teacher, the timm head of a DeiT-style file is reported
    unused."""
    mae, _ = tiny_mae
    state = official_mae_state(mae.state_dict(), with_decoder=False)
    state['head.weight'] = torch.zeros(10, 32)
    state['dist_token'] = torch.zeros(1, 1, 32)
    path = tmp_path / 'deit_style.pth'
    torch.save({'model': state}, path)
    cfg = teacher_cfg(path)
    del cfg['neck']
    teacher = build_frozen_teacher(cfg, config_key='model.teacher_c')
    assert teacher.part_names == ['backbone']
    assert set(teacher.load_report['unused']) == {'head.weight',
                                                  'dist_token'}
    for key, value in teacher.backbone.state_dict().items():
        assert torch.equal(value, mae.state_dict()['backbone.' + key]), key


def test_fine_tuned_timm_classifier_loads_backbone_and_head(tiny_mae,
                                                           tmp_path):
    """A fine-tuned MAE in timm layout (global pool: fc_norm, head.*) as a
    classification teacher: fc_norm -> backbone ln2, head -> the
    VisionTransformerClsHead's layers.head."""
    mae, _ = tiny_mae
    state = official_mae_state(mae.state_dict(), with_decoder=False)
    del state['norm.weight'], state['norm.bias']
    state['fc_norm.weight'] = torch.randn(32)
    state['fc_norm.bias'] = torch.randn(32)
    state['head.weight'] = torch.randn(10, 32)
    state['head.bias'] = torch.randn(10)
    path = tmp_path / 'mae_finetuned.pth'
    torch.save({'model': state}, path)
    cfg = teacher_cfg(path)
    del cfg['neck']
    cfg['backbone'].update(type='VisionTransformer', out_type='avg_featmap',
                           final_norm=False)
    del cfg['backbone']['mask_ratio']
    cfg['head'] = dict(type='VisionTransformerClsHead', num_classes=10,
                       in_channels=32)
    teacher = build_frozen_teacher(cfg)
    assert teacher.part_names == ['backbone', 'head']
    assert teacher.load_report['unused'] == []
    assert torch.equal(teacher.head.layers.head.weight, state['head.weight'])
    assert torch.equal(teacher.backbone.ln2.bias, state['fc_norm.bias'])


def test_a_file_with_python_objects_needs_weights_only_false(tmp_path):
    path = tmp_path / 'pickled.pth'
    torch.save({'model': {}, 'obj': Opaque()}, path)
    with pytest.raises(TeacherCheckpointError,
                       match='set model.teacher.weights_only=False'):
        build_frozen_teacher(teacher_cfg(path))


class Opaque:
    pass


def test_bare_mmpretrain_vit_file_loads_as_a_backbone(tiny_mae, tmp_path):
    """A converted CLIP / DeiT encoder saved with bare mmpretrain ViT
    keys."""
    mae, _ = tiny_mae
    bare = {k[len('backbone.'):]: v for k, v in mae.state_dict().items()
            if k.startswith('backbone.')}
    path = tmp_path / 'vit_bare.pth'
    torch.save(bare, path)
    cfg = teacher_cfg(path)
    del cfg['neck']
    teacher = build_frozen_teacher(cfg)
    assert teacher.load_report['src_format'] == 'mmpretrain-vit'
    with pytest.raises(TeacherCheckpointError, match='encoder only'):
        build_frozen_teacher(teacher_cfg(path))


def test_every_missing_key_is_an_error_unless_allowed(tiny_mae, tmp_path):
    mae, _ = tiny_mae
    state = mae.state_dict()
    del state['neck.decoder_blocks.5.attn.qkv.weight']
    del state['backbone.ln1.bias']
    path = tmp_path / 'incomplete.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(TeacherCheckpointError) as info:
        build_frozen_teacher(teacher_cfg(path))
    message = str(info.value)
    assert 'lacks 2 tensor(s)' in message
    assert 'neck.decoder_blocks.5.attn.qkv.weight' in message
    assert 'backbone.ln1.bias' in message
    assert 'model.teacher.allow_missing' in message
    teacher = build_frozen_teacher(
        teacher_cfg(path, allow_missing=['neck.decoder_blocks.5.*',
                                         'backbone.ln1.bias']))
    assert torch.equal(teacher.backbone.ln1.weight,
                       state['backbone.ln1.weight'])


def test_shape_mismatch_names_the_tensors(tiny_mae):
    _, path = tiny_mae
    cfg = teacher_cfg(path)
    cfg['neck'] = dict(TEACHER_DECODER, decoder_embed_dim=32)
    with pytest.raises(TeacherCheckpointError,
                       match=r'another shape: neck\.decoder_blocks\.0\.attn'
                       r'\.proj\.bias: checkpoint \(16,\), teacher \(32,\)'):
        build_frozen_teacher(cfg)


def test_missing_or_unset_file_is_a_clear_error(tmp_path):
    missing = tmp_path / 'nowhere' / 'mae_full.pth'
    with pytest.raises(FileNotFoundError) as info:
        build_frozen_teacher(teacher_cfg(missing))
    message = str(info.value)
    assert 'model.teacher.checkpoint' in message and str(missing) in message
    assert 'never downloaded' in message
    cfg = teacher_cfg(missing)
    del cfg['checkpoint']
    with pytest.raises(TeacherCheckpointError, match='is not set'):
        build_frozen_teacher(cfg)
    with pytest.raises(TeacherCheckpointError, match='is not set'):
        build_frozen_teacher(teacher_cfg(''))


def test_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'garbage.pth'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(TeacherCheckpointError,
                       match='model.teacher.checkpoint: .*not a readable'):
        build_frozen_teacher(teacher_cfg(path))


def test_init_weights_leaves_the_teacher_alone(build_g2sd, tiny_mae):
    """The algorithm's init_cfg (Xavier on every Linear, constant norms)
    and the parts' own init_weights never reach the loaded teacher."""
    mae, _ = tiny_mae
    model = build_g2sd()  # built and init_weights()
    source = mae.state_dict()
    for key, value in model.teacher.teacher_state_dict().items():
        assert torch.equal(value, source[key]), key
    names = [n for n, _ in model.named_children()]
    with detached_frozen_teachers(model):
        assert 'teacher' not in dict(model.named_children())
    assert [n for n, _ in model.named_children()] == names


def test_teacher_is_not_in_the_optimizer_and_gets_no_gradient(build_g2sd):
    from mmengine.optim import build_optim_wrapper
    model = build_g2sd()
    wrapper = build_optim_wrapper(
        model,
        dict(constructor='TrainableOptimWrapperConstructor',
             optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
             paramwise_cfg=dict(custom_keys={'bias': dict(decay_mult=0.)})))
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups
                    for p in g['params']}
    teacher = {id(p) for p in model.teacher.parameters()}
    assert teacher and not teacher & in_optimizer
    trainable = {id(p) for n, p in model.named_parameters()
                 if p.requires_grad}
    assert trainable == in_optimizer

    inputs = torch.randn(2, 3, 32, 32)
    model.train()
    loss = model.loss(inputs, [])['loss']
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.neck.parameters())


def test_checkpoints_store_only_the_fingerprint_and_reload(build_g2sd,
                                                           tiny_mae,
                                                           tmp_path):
    """A G2SD state dict has no teacher weights; loading it (strict, torch
    and MMEngine) neither misses them nor changes them, even when the
    checkpoint does hold teacher tensors."""
    from mmengine.runner import load_checkpoint
    mae, _ = tiny_mae
    model = build_g2sd()
    state = model.state_dict()
    assert [k for k in state if k.startswith('teacher.')] == [
        'teacher.fingerprint'
    ]
    other = build_g2sd()
    with torch.no_grad():
        for p in other.backbone.parameters():
            p.add_(1.0)
    result = other.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(other.backbone.state_dict(),
                               model.backbone.state_dict())
    # a checkpoint with (other) teacher weights leaves the teacher alone
    bogus = dict(state)
    bogus['teacher.neck.mask_token'] = torch.ones_like(
        model.teacher.neck.mask_token)
    path = tmp_path / 'g2sd.pth'
    torch.save({'state_dict': bogus}, path)
    load_checkpoint(other, str(path), map_location='cpu', strict=True)
    torch.testing.assert_close(other.teacher.neck.mask_token,
                               mae.neck.mask_token)


def test_a_changed_teacher_file_is_refused_on_load(build_g2sd, tiny_mae,
                                                   tmp_path):
    mae, _ = tiny_mae
    state = build_g2sd().state_dict()
    changed = mae.state_dict()
    changed['neck.decoder_blocks.0.ln1.weight'] += 1.0
    path = tmp_path / 'changed_mae.pth'
    torch.save({'state_dict': changed}, path)
    other = MODELS.build(g2sd_cfg(path))
    with pytest.raises(TeacherCheckpointError,
                       match='another teacher than .*changed_mae.pth'):
        other.load_state_dict(state)


def test_teacher_prefixes_pick_an_rcmae_teacher(tiny_mae, tmp_path):
    """prefixes= takes other sub-modules of an mmpretrain-layout file, e.g.
    the EMA teacher (teacher.* / teacher_neck.*) of an RC-MAE run."""
    mae, _ = tiny_mae
    state = {}
    for key, value in mae.state_dict().items():
        part, name = key.split('.', 1)
        state[f'{part}.{name}'] = torch.zeros_like(value)  # the student
        prefix = {'backbone': 'teacher.', 'neck': 'teacher_neck.'}[part]
        state[prefix + name] = value
    path = tmp_path / 'rcmae.pth'
    torch.save({'state_dict': state}, path)
    teacher = build_frozen_teacher(
        teacher_cfg(path, prefixes=dict(backbone='teacher.',
                                        neck='teacher_neck.')))
    for key, value in teacher.teacher_state_dict().items():
        assert torch.equal(value, mae.state_dict()[key]), key
    assert any(k.startswith('backbone.') for k in
               teacher.load_report['unused'])


def test_run_teacher_returns_float32_without_autograd(build_g2sd):
    model = build_g2sd()
    inputs = torch.randn(2, 3, 32, 32)
    ids = model.backbone.random_order(2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        target = model.teacher_targets(inputs, ids)
    assert target.dtype == torch.float32 and not target.requires_grad
    assert not target.is_inference()
    exact = model.teacher_targets(inputs, ids)
    torch.testing.assert_close(target, exact, rtol=0.05, atol=0.05)


def test_teacher_config_errors():
    with pytest.raises(ValueError, match='at least one of'):
        FrozenTeacher(checkpoint='x.pth')
    with pytest.raises(TypeError, match='must be a dict'):
        build_frozen_teacher('x.pth')
