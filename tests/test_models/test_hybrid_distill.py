"""Hybrid Distill (arXiv 2306.15876): the feature term against T_c's final
tokens, the relation term against T_m's attention maps (both against hand
computations), alpha weighting, progressive redundant token masking, frozen
teachers loaded from tiny checkpoint files."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS

from mmsdae.analysis.attention import attention_maps
from mmsdae.models import (AttentionCapture, FeatureDistillHead,
                           ProgressiveRedundantMasking, TokenRelationHead,
                           class_token_attention)

# 32 px images, 8 px patches: 16 patches. Student 16 wide, 3 blocks, 2
# heads; T_c (the DeiT / CLIP stand-in) 24 wide, 2 blocks; T_m (the MAE
# stand-in) 32 wide, 3 blocks, 2 heads.
GRID = dict(img_size=32, patch_size=8)
STUDENT = dict(
    type='SdAEViT',
    arch=dict(embed_dims=16, num_layers=3, num_heads=2,
              feedforward_channels=32),
    **GRID)
T_C = dict(
    type='VisionTransformer',
    arch=dict(embed_dims=24, num_layers=2, num_heads=2,
              feedforward_channels=48),
    out_type='raw',
    **GRID)
T_M = dict(
    type='MAEViT',
    arch=dict(embed_dims=32, num_layers=3, num_heads=2,
              feedforward_channels=64),
    **GRID)


def _perturbed(cfg, seed):
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(0.05 * torch.randn_like(value))
    model.eval()
    return model


@pytest.fixture
def tiny_teachers(tmp_path):
    """T_c and T_m, randomly initialised and perturbed, saved as MMEngine
    checkpoints (``backbone.*``; T_c with a classifier head as a DeiT
    checkpoint has): returns ``(t_c, t_m, path_c, path_m)``."""
    t_c, t_m = _perturbed(T_C, 0), _perturbed(T_M, 1)
    path_c, path_m = tmp_path / 't_c.pth', tmp_path / 't_m.pth'
    state = {f'backbone.{k}': v for k, v in t_c.state_dict().items()}
    state['head.layers.head.weight'] = torch.randn(10, 24)
    torch.save(dict(state_dict=state, meta=dict()), path_c)
    torch.save(dict(state_dict={f'backbone.{k}': v
                                for k, v in t_m.state_dict().items()},
                    meta=dict()), path_m)
    return t_c, t_m, path_c, path_m


def hd_cfg(path_c, path_m, **overrides):
    cfg = dict(
        type='HybridDistill',
        backbone=copy.deepcopy(STUDENT),
        head=dict(type='FeatureDistillHead', in_channels=16,
                  out_channels=24),
        teacher_c=dict(type='FrozenTeacher', checkpoint=str(path_c),
                       backbone=copy.deepcopy(T_C)),
        teacher_m=dict(type='FrozenTeacher', checkpoint=str(path_m),
                       backbone=dict(copy.deepcopy(T_M), type='SdAEViT')),
        token_masking=dict(stages=[(0.0, 0.0), (0.5, 0.25), (0.75, 0.5)]),
        init_cfg=[
            dict(type='Xavier', layer='Linear', distribution='uniform'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ])
    cfg.update(overrides)
    return cfg


@pytest.fixture
def build_hd(tiny_teachers):
    _, _, path_c, path_m = tiny_teachers

    def _build(**overrides):
        torch.manual_seed(2)
        model = MODELS.build(hd_cfg(path_c, path_m, **overrides))
        model.init_weights()
        return model

    return _build


@pytest.fixture
def progress():
    """Set the training progress the model reads (epoch / max_epochs in
    MMEngine's message hub); restored afterwards."""
    hub = MessageHub.get_current_instance()
    info = hub.runtime_info
    saved = {k: info[k] for k in ('epoch', 'max_epochs') if k in info}

    def _set(epoch, max_epochs=4):
        hub.update_info('epoch', epoch)
        hub.update_info('max_epochs', max_epochs)

    _set(0)
    yield _set
    # restore, removing what was not there: a key left at None breaks
    # later readers such as EMATeacherSelfSupervisor (get_info's default
    # only applies to absent keys)
    for key in ('epoch', 'max_epochs'):
        if key in saved:
            hub.update_info(key, saved[key])
        else:
            info.pop(key, None)


def total(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


def kl_rows(p_t, p_s):
    """KL(P_t || P_s) of every row, written out, averaged over rows."""
    return (p_t * (p_t.log() - p_s.log())).sum(-1).mean()


# --- teachers ----------------------------------------------------------------


def test_teachers_come_from_their_files_frozen_and_outside_the_optimizer(
        build_hd, tiny_teachers, progress):
    from mmengine.optim import build_optim_wrapper

    import mmsdae.engine  # noqa: F401  (registers the constructor)
    t_c, t_m, _, _ = tiny_teachers
    model = build_hd()
    for ours, theirs in ((model.teacher_c.backbone, t_c),
                         (model.teacher_m.backbone, t_m)):
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key
    assert not model.teacher_c.training and not model.teacher_m.training
    model.train()
    assert not model.teacher_c.training and not model.teacher_m.training
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', constructor='TrainableOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-2)))
    optimized = {id(p) for g in wrapper.optimizer.param_groups
                 for p in g['params']}
    teachers = list(model.teacher_c.parameters()) + list(
        model.teacher_m.parameters())
    assert not optimized & {id(p) for p in teachers}
    assert optimized == {id(p) for p in model.parameters() if p.requires_grad}
    before = {k: v.clone() for k, v in model.teacher_m.teacher_state_dict()
              .items()}
    student = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    progress(3)  # masking on: 8 of 16 patches
    for _ in range(2):
        wrapper.update_params(total(model.loss(torch.randn(4, 3, 32, 32),
                                               [])))
    assert all(p.grad is None for p in teachers)
    assert all(not p.requires_grad for p in teachers)
    for key, value in model.teacher_m.teacher_state_dict().items():
        assert torch.equal(value, before[key]), key
    assert any(not torch.equal(v, student[k])
               for k, v in model.backbone.state_dict().items())
    # only fingerprints of the teachers in the run's checkpoints
    state = model.state_dict()
    assert [k for k in state if k.startswith('teacher_')] == [
        'teacher_c.fingerprint', 'teacher_m.fingerprint'
    ]


# --- the two terms, by hand ------------------------------------------------


def test_feature_head_smooth_l1_on_layernormed_targets_by_hand():
    head = FeatureDistillHead(in_channels=2, out_channels=3, beta=2.0)
    with torch.no_grad():
        head.proj.weight.copy_(torch.tensor([[1., 0.], [0., 1.], [1., 1.]]))
        head.proj.bias.zero_()
    student = torch.tensor([[[1.0, 2.0], [0.0, -1.0]]])  # (1, 2 tokens, 2)
    teacher = torch.tensor([[[2.0, 4.0, 6.0], [1.0, 1.0, 4.0]]])
    # pred: [1, 2, 3] and [0, -1, -1]
    # LN targets (population variance, eps 1e-6): [2,4,6] -> [-a, 0, a],
    # a = 2 / sqrt(8/3 + eps); [1,1,4] -> [-b, -b, 2b], b = 1/sqrt(2 + eps)
    a = 2 / (8 / 3 + 1e-6)**0.5
    b = 1 / (2 + 1e-6)**0.5
    diff = torch.tensor([1 + a, 2.0, 3 - a, 0 + b, -1 + b, -1 - 2 * b])
    absd = diff.abs()
    want = torch.where(absd < 2, 0.5 * absd**2 / 2, absd - 1).mean()
    torch.testing.assert_close(head.loss(student, teacher), want)
    # the other distances
    pred = head(student)
    target = head.target(teacher)
    mse = FeatureDistillHead(2, 3, distance='mse')
    mse.load_state_dict(head.state_dict())
    torch.testing.assert_close(mse.loss(student, teacher),
                               ((pred - target)**2).mean())
    cos = FeatureDistillHead(2, 3, distance='cosine', target_norm=False)
    cos.load_state_dict(head.state_dict())
    want_cos = 1 - ((pred * teacher).sum(-1) / pred.norm(dim=-1) /
                    teacher.norm(dim=-1))
    torch.testing.assert_close(cos.loss(student, teacher), want_cos.mean())


def test_relation_head_kl_of_attention_rows_by_hand():
    # one image, one head, 2 tokens; logits chosen so the rows are simple
    s = torch.log(torch.tensor([[[[0.5, 0.5], [0.9, 0.1]]]]))
    t = torch.log(torch.tensor([[[[0.75, 0.25], [0.5, 0.5]]]]))
    head = TokenRelationHead()
    # row 1: .75 ln(.75/.5) + .25 ln(.25/.5); row 2: .5 ln(.5/.9) + .5
    # ln(.5/.1)
    import math
    row1 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    row2 = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5.0)
    assert float(head.loss([s], [t])) == pytest.approx((row1 + row2) / 2,
                                                       rel=1e-5)
    # identical maps: zero; several blocks: the mean over blocks
    assert float(head.loss([t], [t])) == pytest.approx(0.0, abs=1e-7)
    assert float(head.loss([s, t], [t, t])) == pytest.approx(
        (row1 + row2) / 4, rel=1e-5)
    # random (B, H, T, T) against the written-out formula, per head
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(head.pair_loss(s, t),
                               kl_rows(t.softmax(-1), s.softmax(-1)))
    # head-averaged maps (different head counts allowed)
    mean = TokenRelationHead(head_reduce='mean')
    t4 = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(
        mean.pair_loss(s, t4),
        kl_rows(t4.softmax(-1).mean(1), s.softmax(-1).mean(1)))
    mse = TokenRelationHead(distance='mse')
    torch.testing.assert_close(mse.pair_loss(s, t),
                               ((s.softmax(-1) - t.softmax(-1))**2).mean())
    with pytest.raises(ValueError, match="head_reduce='mean'"):
        head.pair_loss(s, t4)


def test_capture_keeps_the_block_output_and_gives_the_attention():
    torch.manual_seed(0)
    encoder = MODELS.build(copy.deepcopy(STUDENT))
    encoder.eval()  # (MAEViT.train returns None)
    x = torch.randn(2, 3, 32, 32)
    ids = torch.arange(16).expand(2, -1).unsqueeze(1)
    plain = encoder.encode_patches(x, ids, keep_cls=True)
    fused = encoder.layers[0].attn.scaled_dot_product_attention
    with AttentionCapture(encoder, [0, -1]) as capture:
        captured = encoder.encode_patches(x, ids, keep_cls=True)
    torch.testing.assert_close(captured, plain, rtol=1e-5, atol=1e-5)
    # the fused kernel is back afterwards
    assert encoder.layers[0].attn.scaled_dot_product_attention is fused
    # the same maps as the analysis recorder (an independent path)
    want = attention_maps(encoder, x)
    for index, logits in zip([0, 2], capture.get([0, 2])):
        torch.testing.assert_close(logits.softmax(-1), want[index],
                                   rtol=1e-5, atol=1e-6)
    # gradients reach qkv through the captured logits
    capture.get([0])[0].sum().backward()
    assert encoder.layers[0].attn.qkv.weight.grad is not None


def test_loss_terms_equal_hand_computation_without_masking(build_hd,
                                                           progress):
    model = build_hd(alpha=0.7)
    model.eval()  # no drop path (none configured anyway)
    torch.manual_seed(4)
    x = torch.randn(2, 3, 32, 32)
    losses = model.loss(x, [])
    assert float(losses['masked_tokens']) == 0
    with torch.no_grad():
        # feature term: student's final tokens -> proj vs LN(T_c tokens)
        student_tokens = model.backbone(x, mask=None)[-1]
        t_c = model.teacher_c.backbone(x)[-1]
        pred = model.head.proj(student_tokens)
        target = F.layer_norm(t_c, (24, ), eps=1e-6)
        want_feature = F.smooth_l1_loss(pred, target, beta=2.0)
        # relation term: blocks 0, 1 (all but the last), per head KL
        maps_s = attention_maps(model.backbone, x)
        maps_t = attention_maps(model.teacher_m.backbone, x)
        want_relation = torch.stack(
            [kl_rows(maps_t[i], maps_s[i]) for i in (0, 1)]).mean()
    assert model.relation_layers == [0, 1]
    torch.testing.assert_close(losses['loss_feature'], want_feature,
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses['loss_relation'],
                               0.7 * want_relation, rtol=1e-4, atol=1e-6)


def test_alpha_weights_the_relation_term_only(build_hd, progress,
                                              monkeypatch):
    x = torch.randn(2, 3, 32, 32)
    one = build_hd(alpha=1.0).loss(x, [])
    half = build_hd(alpha=0.5).loss(x, [])
    torch.testing.assert_close(half['loss_feature'], one['loss_feature'])
    torch.testing.assert_close(half['loss_relation'],
                               0.5 * one['loss_relation'])
    # alpha = 0 (Table A4's "no MIM supervision"): T_m is not even run
    zero = build_hd(alpha=0.0)
    monkeypatch.setattr(type(zero), 'teacher_m_relations',
                        lambda *a: pytest.fail('T_m ran with alpha=0'))
    out = zero.loss(x, [])
    assert 'loss_relation' not in out
    torch.testing.assert_close(out['loss_feature'], one['loss_feature'])
    with pytest.raises(ValueError, match='alpha'):
        build_hd(alpha=-1.0)


# --- progressive redundant token masking --------------------------------


def test_schedule_steps_through_the_stages():
    masking = ProgressiveRedundantMasking(
        stages=[(0.0, 0.0), (1 / 3, 0.25), (2 / 3, 0.5)])
    got = [masking.num_masked(196, e / 300) for e in (0, 99, 100, 199, 200,
                                                      299)]
    assert got == [0, 0, 49, 49, 98, 98]
    for bad in ([(0.1, 0.0)], [(0.0, 0.5), (0.5, 0.25)],
                [(0.0, 0.0), (0.5, 1.0)], [(0.0, 0.0), (0.0, 0.2)]):
        with pytest.raises(ValueError, match='token_masking.stages'):
            ProgressiveRedundantMasking(stages=bad)


def test_the_least_attended_patches_are_masked():
    # class-token logits: patch j gets logit j, except patches 5 and 2,
    # pushed to the bottom; head 2 agrees in order
    logits = torch.zeros(1, 2, 9, 9)
    row = torch.tensor([0., 3., -5., 1., 4., -9., 2., 6., 7.])
    logits[0, 0, 0], logits[0, 1, 0] = row, 2 * row
    score = class_token_attention(logits)
    assert score.shape == (1, 8)
    kept, masked = ProgressiveRedundantMasking.split(score, 3)
    # patches (columns 1..8) scores in order of row[1:]: 3,-5,1,4,-9,2,6,7
    # -> the 3 lowest are patches 4 (-9), 1 (-5), 2 (1)
    assert masked.tolist() == [[1, 2, 4]]
    assert kept.tolist() == [[0, 3, 5, 6, 7]]


def test_the_student_sees_the_scheduled_unredundant_patches(
        build_hd, progress, monkeypatch):
    model = build_hd()
    # T_c's class token attends to patch j with weight ~ (j * 7) mod 16
    # (a permutation): the lowest are the masked ones
    score = (torch.arange(16) * 7 % 16).float().expand(2, -1)
    real = model.teacher_c_pass

    def fake(inputs, with_score):
        tokens, _ = real(inputs, False)
        return tokens, (score if with_score else None)

    monkeypatch.setattr(model, 'teacher_c_pass', fake)
    seen = []
    encode = model.backbone.encode_patches

    def spy(x, ids, keep_cls=False):
        seen.append(ids.squeeze(1).clone())
        return encode(x, ids, keep_cls=keep_cls)

    monkeypatch.setattr(model.backbone, 'encode_patches', spy)
    seen_m = []
    encode_m = model.teacher_m.backbone.encode_patches

    def spy_m(x, ids, keep_cls=False):
        seen_m.append(ids.squeeze(1).clone())
        return encode_m(x, ids, keep_cls=keep_cls)

    monkeypatch.setattr(model.teacher_m.backbone, 'encode_patches', spy_m)
    order = torch.argsort(score[0])  # most redundant first
    x = torch.randn(2, 3, 32, 32)
    # stages: 0 until half the run, 25 % until 3/4, then 50 %
    for epoch, k in ((0, 0), (1, 0), (2, 4), (3, 8)):
        progress(epoch, 4)
        seen.clear()
        seen_m.clear()
        out = model.loss(x, [])
        assert float(out['masked_tokens']) == k
        ids = seen[0]
        assert ids.shape == (2, 16 - k)
        want = torch.sort(order[k:]).values
        assert torch.equal(ids[0], want) and torch.equal(ids[1], want)
        # T_m saw the same patches as the student (visible input)
        assert torch.equal(seen_m[0], ids)
        assert torch.isfinite(out['loss_relation'])


def test_masking_off_keeps_every_patch(build_hd, progress):
    model = build_hd(token_masking=None)
    for epoch in range(4):
        progress(epoch, 4)
        assert model.num_masked() == 0
        assert float(model.loss(torch.randn(1, 3, 32, 32),
                                [])['masked_tokens']) == 0


def test_full_teacher_input_restricts_and_renormalises(build_hd, progress):
    visible = build_hd(teacher_m_input='visible')
    full = build_hd(teacher_m_input='full')
    x = torch.randn(2, 3, 32, 32)
    # without masking both give the same relation term
    torch.testing.assert_close(full.loss(x, [])['loss_relation'],
                               visible.loss(x, [])['loss_relation'])
    # restrict: rows and columns of the class token and the kept patches
    logits = torch.randn(2, 2, 17, 17)
    kept = torch.tensor([[0, 3, 7], [1, 2, 15]])
    got = full.restrict(logits, kept)
    for b in range(2):
        index = torch.cat([torch.tensor([0]), kept[b] + 1])
        torch.testing.assert_close(got[b], logits[b][:, index][:, :, index])
    # masking scored by T_m's own class token
    progress(3, 4)
    by_m = build_hd(teacher_m_input='full',
                    token_masking=dict(stages=[(0.0, 0.5)],
                                       score_teacher='teacher_m'))
    assert float(by_m.loss(x, [])['masked_tokens']) == 8


def test_clip_style_input_renormalisation(build_hd):
    model = build_hd(
        data_preprocessor=dict(type='SelfSupDataPreprocessor',
                               mean=[100., 110., 120.], std=[50., 60., 70.]),
        teacher_c_norm=dict(mean=[120., 110., 100.], std=[70., 60., 50.]))
    raw = torch.rand(1, 3, 4, 4) * 255
    x = (raw - torch.tensor([100., 110., 120.]).view(1, 3, 1, 1)) / \
        torch.tensor([50., 60., 70.]).view(1, 3, 1, 1)
    want = (raw - torch.tensor([120., 110., 100.]).view(1, 3, 1, 1)) / \
        torch.tensor([70., 60., 50.]).view(1, 3, 1, 1)
    torch.testing.assert_close(model._input_c(x), want)


def test_bf16_autocast_step_is_finite(build_hd, progress):
    model = build_hd()
    progress(3, 4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model.loss(torch.randn(2, 3, 32, 32), [])
    for key in ('loss_feature', 'loss_relation'):
        assert out[key].dtype == torch.float32 and torch.isfinite(out[key])


def test_configuration_errors(tiny_teachers):
    _, _, path_c, path_m = tiny_teachers

    def build(**overrides):
        return MODELS.build(hd_cfg(path_c, path_m, **overrides))

    cfg = hd_cfg(path_c, path_m)
    cfg['head']['out_channels'] = 16
    with pytest.raises(ValueError, match='head.out_channels=24'):
        MODELS.build(cfg)
    cfg = hd_cfg(path_c, path_m)
    cfg['teacher_c']['backbone']['out_type'] = 'cls_token'
    with pytest.raises(ValueError, match="out_type='raw'"):
        MODELS.build(cfg)
    cfg = hd_cfg(path_c, path_m)
    cfg['teacher_m']['backbone']['type'] = 'MAEViT'
    with pytest.raises(TypeError, match="teacher_m_input='full'"):
        MODELS.build(cfg)
    build(teacher_m_input='full', teacher_m=dict(
        cfg['teacher_m']))  # an MAEViT T_m is fine on the whole image
    cfg = hd_cfg(path_c, path_m)
    cfg['teacher_m']['backbone']['arch']['num_heads'] = 4
    with pytest.raises(ValueError, match="head_reduce='mean'"):
        MODELS.build(cfg)
    cfg['relation_head'] = dict(type='TokenRelationHead', head_reduce='mean')
    MODELS.build(cfg)
    cfg = hd_cfg(path_c, path_m)
    cfg['backbone']['patch_size'] = 16  # 4 student patches, 16 teacher ones
    with pytest.raises(ValueError, match='same img_size and patch_size'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='relation_layers'):
        build(relation_layers=[0, 5])
    with pytest.raises(ValueError, match='pair up'):
        build(relation_layers=[0, 1], teacher_relation_layers=[2])
    with pytest.raises(ValueError, match="score_teacher='teacher_m'"):
        build(token_masking=dict(score_teacher='teacher_m'))
    with pytest.raises(FileNotFoundError, match='model.teacher_m.checkpoint'):
        build(teacher_m=dict(hd_cfg(path_c, path_m)['teacher_m'],
                             checkpoint=str(path_m) + '.absent'))
