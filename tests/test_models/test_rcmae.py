"""RC-MAE (rcmae_main.txt): Eq. 6 against a hand computation, the EMA
teacher of Eq. 2, RC-MAE-S / -D masking, the teacher outside the
optimizer, and a short training run whose loss falls."""
import copy

import pytest
import torch
from conftest import TINY_RCMAE
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS


def build(**overrides):
    cfg = copy.deepcopy(TINY_RCMAE)
    for key, value in overrides.items():
        if isinstance(value, dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def perturb_student(model, scale=0.05):
    with torch.no_grad():
        for p in list(model.backbone.parameters()) + list(
                model.neck.parameters()):
            p.add_(scale * torch.randn_like(p))


def patchify(images, p=8):
    """(B, C, H, W) -> (B, N, p * p * C), raster patch order, pixels in
    (row, column, channel) order as MAE."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p),
                                               p * p * c)


def test_eq6_against_a_hand_computation():
    model = build()
    perturb_student(model)  # teacher != student: a non-zero consistency
    images = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    losses = model.loss(images, None)

    # The same step by hand: same random mask (same seed).
    torch.manual_seed(1)
    latent, mask, ids_restore = model.backbone(images)
    pred = model.neck(latent, ids_restore)
    teacher_pred, _ = model.teacher_reconstruction(images, ids_restore)
    target = patchify(images)
    mean = target.mean(-1, keepdim=True)
    var = ((target - mean)**2).sum(-1, keepdim=True) / (target.shape[-1] - 1)
    target = (target - mean) / (var + 1e-6).sqrt()  # norm_pix (MAE)
    masked = mask.bool()
    assert masked.sum() == 2 * 12  # |M| = 12 per image
    rec = ((pred - target)**2).mean(-1)[masked].mean()
    cons = ((pred - teacher_pred)**2).mean(-1)[masked].mean()
    torch.testing.assert_close(losses['loss_rec'], rec)
    torch.testing.assert_close(losses['loss_cons'], cons)
    assert cons > 0

    # gamma scales the consistency term only (Eq. 6 weight, default 1)
    weighted = build(head=dict(consistency_weight=0.5))
    perturb_student(weighted)
    torch.manual_seed(1)
    half = weighted.loss(images, None)
    torch.testing.assert_close(half['loss_cons'], 0.5 * cons)
    torch.testing.assert_close(half['loss_rec'], rec)


def test_consistency_is_zero_while_teacher_equals_student():
    # RC-MAE-S: same visible patches, same weights, no drop path -> Y' = Y.
    model = build()
    losses = model.loss(torch.randn(2, 3, 32, 32), None)
    assert losses['loss_cons'].item() == pytest.approx(0, abs=1e-10)
    # RC-MAE-D sees other patches: the reconstructions differ.
    model = build(teacher_mask='different')
    losses = model.loss(torch.randn(2, 3, 32, 32), None)
    assert losses['loss_cons'].item() > 1e-4


def test_same_and_different_masks():
    images = torch.randn(256, 3, 32, 32)
    same = build()
    _, mask, ids_restore = same.backbone(images)
    _, teacher_ids = same.teacher_reconstruction(images, ids_restore)
    assert torch.equal(teacher_ids, ids_restore)

    diff = build(teacher_mask='different')
    _, mask, ids_restore = diff.backbone(images)
    _, teacher_ids = diff.teacher_reconstruction(images, ids_restore)
    student_visible = ids_restore.argsort(1)[:, :4]
    teacher_visible = teacher_ids.argsort(1)[:, :4]
    assert not torch.equal(teacher_ids, ids_restore)
    # Independent masks: visible sets of 4 of 16 overlap by 4 * 4 / 16 = 1
    # patch on average (hypergeometric, variance 0.6 per image).
    overlap = (student_visible[:, :, None] == teacher_visible[:, None, :]
               ).sum((1, 2)).float()
    assert abs(overlap.mean().item() - 1.0) < 4 * (0.6 / 256)**0.5


def test_teacher_has_no_gradient_and_is_not_in_the_optimizer():
    model = build()
    perturb_student(model)
    wrapper = build_optim_wrapper(
        model,
        dict(constructor='TrainableOptimWrapperConstructor',
             optimizer=dict(type='AdamW', lr=1e-3)))
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups
                    for p in g['params']}
    teacher = list(model.teacher.parameters()) + list(
        model.teacher_neck.parameters())
    assert teacher and not any(id(p) in in_optimizer for p in teacher)
    assert all(not p.requires_grad for p in teacher)
    before = [p.clone() for p in teacher]
    losses = model.loss(torch.randn(2, 3, 32, 32), None)
    sum(losses.values()).backward()
    wrapper.step()
    assert all(p.grad is None for p in teacher)
    assert all(torch.equal(a, b) for a, b in zip(before, teacher))
    assert model.backbone.cls_token.grad is not None
    assert model.teacher.training is False
    model.train()
    assert model.teacher.training is False
    assert model.teacher_neck.training is False


def test_ema_after_k_steps_is_the_closed_form_of_eq2():
    """T(k) = alpha^k T(0) + sum_i alpha^(k-i) (1 - alpha) S(i), for the
    encoder and the decoder alike."""
    model = build()
    alpha, steps = 0.9, 4
    t0 = {k: v.clone() for k, v in model.teacher_neck.state_dict().items()}
    students = []
    for _ in range(steps):
        perturb_student(model, scale=0.5)
        students.append({k: v.clone()
                         for k, v in model.neck.state_dict().items()})
        model.momentum_update(alpha)
    for name, value in model.teacher_neck.state_dict().items():
        expected = alpha**steps * t0[name] + sum(
            alpha**(steps - i) * (1 - alpha) * s[name]
            for i, s in enumerate(students, start=1))
        torch.testing.assert_close(value, expected)
    assert int(model.teacher_updates) == steps
    # the encoder follows the same rule
    encoder = model.teacher.state_dict()['layers.0.attn.qkv.weight']
    student = model.backbone.state_dict()['layers.0.attn.qkv.weight']
    assert not torch.equal(encoder, student)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="'same'"):
        build(teacher_mask='other')
    with pytest.raises(ValueError, match='patch_size'):
        build(head=dict(patch_size=16))
    with pytest.raises(ValueError, match='consistency_weight'):
        build(head=dict(consistency_weight=-1.0))
    with pytest.raises(ValueError, match='feature_encoder'):
        build(feature_encoder='decoder')


def test_checkpoint_without_teacher_fills_encoder_and_decoder(tmp_path):
    source = build()
    perturb_student(source)
    student_only = {k: v for k, v in source.state_dict().items()
                    if not k.startswith(('teacher.', 'teacher_neck.'))}
    target = build()
    target.load_state_dict(student_only, strict=False)
    for name, value in source.neck.state_dict().items():
        torch.testing.assert_close(target.teacher_neck.state_dict()[name],
                                   value)
    for name, value in source.backbone.state_dict().items():
        torch.testing.assert_close(target.teacher.state_dict()[name], value)


def test_default_export_is_the_teacher():
    from mmsdae.utils.checkpoint import convert_checkpoint
    model = build()
    perturb_student(model)
    state, report = convert_checkpoint(dict(state_dict=model.state_dict()))
    assert report.encoder == 'teacher'
    torch.testing.assert_close(
        state['backbone.layers.1.attn.qkv.weight'],
        model.teacher.state_dict()['layers.1.attn.qkv.weight'])
    state, report = convert_checkpoint(
        dict(state_dict=model.state_dict()), encoder='student')
    torch.testing.assert_close(
        state['backbone.layers.1.attn.qkv.weight'],
        model.backbone.state_dict()['layers.1.attn.qkv.weight'])


def test_student_starts_as_its_mae_twin():
    """With the same seed the RC-MAE student and the MAE baseline start
    from the same weights (the teacher copies draw no random numbers)."""
    rcmae = build()
    mae_cfg = copy.deepcopy(TINY_RCMAE)
    mae_cfg.update(type='MAE')
    mae_cfg['backbone']['type'] = 'MAEViT'
    mae_cfg['head'] = dict(
        type='MAEPretrainHead', norm_pix=True, patch_size=8,
        loss=dict(type='PixelReconstructionLoss', criterion='L2'))
    torch.manual_seed(0)
    mae = MODELS.build(mae_cfg)
    mae.init_weights()
    twin = mae.state_dict()
    for name, value in rcmae.state_dict().items():
        if name.startswith(('backbone.', 'neck.')):
            assert torch.equal(value, twin[name]), name


def test_export_follows_the_runs_feature_encoder():
    from mmsdae.utils.checkpoint import convert_checkpoint, default_encoder
    model = build()
    state = model.state_dict()
    meta = dict(cfg="model = dict(type='RCMAE', feature_encoder='student')")
    assert default_encoder(state, meta) == 'student'
    assert default_encoder(state) == 'teacher'  # RC-MAE's choice
    sdae_like = {k: v for k, v in state.items()
                 if not k.startswith('teacher_neck.')}
    assert default_encoder(sdae_like) == 'student'
    _, report = convert_checkpoint(dict(state_dict=state, meta=meta))
    assert report.encoder == 'student'


def test_released_layout_with_student_and_teacher_entries():
    """{'student': {...}, 'teacher': {...}} (timm keys) -> --src-prefix."""
    from mmsdae.utils.checkpoint import convert_checkpoint, unwrap_state_dict
    vit = {'cls_token': torch.zeros(1, 1, 8), 'pos_embed': torch.zeros(1, 5, 8),
           'patch_embed.proj.weight': torch.zeros(8, 3, 4, 4),
           'patch_embed.proj.bias': torch.zeros(8)}
    for name, shape in [('norm1', (8, )), ('norm2', (8, ))]:
        vit[f'blocks.0.{name}.weight'] = torch.ones(shape)
        vit[f'blocks.0.{name}.bias'] = torch.zeros(shape)
    vit.update({
        'blocks.0.attn.qkv.weight': torch.zeros(24, 8),
        'blocks.0.attn.qkv.bias': torch.zeros(24),
        'blocks.0.attn.proj.weight': torch.zeros(8, 8),
        'blocks.0.attn.proj.bias': torch.zeros(8),
        'blocks.0.mlp.fc1.weight': torch.zeros(16, 8),
        'blocks.0.mlp.fc1.bias': torch.zeros(16),
        'blocks.0.mlp.fc2.weight': torch.zeros(8, 16),
        'blocks.0.mlp.fc2.bias': torch.zeros(8),
        'norm.weight': torch.ones(8), 'norm.bias': torch.zeros(8)})
    teacher = {k: v + 1 for k, v in vit.items()}
    release = dict(student=vit, teacher=teacher, epoch=1600)
    state, _ = unwrap_state_dict(release)
    assert 'teacher.blocks.0.attn.qkv.weight' in state
    out, report = convert_checkpoint(release, src_prefix='teacher.')
    assert report.src_format == 'timm'
    torch.testing.assert_close(out['backbone.layers.0.attn.qkv.weight'],
                               teacher['blocks.0.attn.qkv.weight'])


def test_logged_cosine_of_the_reconstructions():
    model = build()  # teacher == student, same mask: identical outputs
    losses = model.loss(torch.randn(2, 3, 32, 32), None)
    assert losses['cos_sim'].item() == pytest.approx(1.0, abs=1e-6)
    assert not losses['cos_sim'].requires_grad
    perturb_student(model, scale=0.5)
    losses = model.loss(torch.randn(2, 3, 32, 32), None)
    assert losses['cos_sim'].item() < 0.99
