"""G2SD specific distillation (issue 8, part 3): the distillation-token
classifier (heads averaged at test time, hard distillation), the detection
distiller (objectness-weighted FPN imitation + objectness BCE, warm-up),
the segmentation distiller (channel-wise divergence), each loss against a
hand computation, and the frozen task teachers (loaded from a file, no
gradient, not in the optimizer, not in the checkpoints)."""
import copy
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from tiny_task_teachers import (SCOPES, build_tiny_student, registry,
                                save_tiny_teacher, tiny_specific_config)

from mmsdae.models.losses import (channel_wise_divergence,
                                  distill_warmup_factor,
                                  hard_distillation_loss,
                                  objectness_weighted_distillation)
from mmsdae.utils.checkpoint import TeacherCheckpointError



@pytest.fixture(autouse=True)
def _quiet_init_logs():
    """No per-parameter init_weights report (thousands of INFO lines for
    a Mask R-CNN)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


# --- classification: distillation token --------------------------------------


def _tiny_head(**kwargs):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            type='DistillTokenClsHead',
            num_classes=5,
            in_channels=8,
            loss=dict(
                type='LabelSmoothLoss', label_smooth_val=0.1,
                mode='original'),
            init_cfg=dict(type='Normal', layer='Linear', std=1.0),
            **kwargs))
    head.init_weights()
    return head


def test_head_averages_the_two_classifiers_at_test_time():
    from mmpretrain.structures import DataSample
    head = _tiny_head()
    cls_token, dist_token = torch.randn(3, 8), torch.randn(3, 8)
    feats = ((cls_token, dist_token), )
    cls_score = cls_token @ head.layers.head.weight.T + head.layers.head.bias
    dist_score = dist_token @ head.layers.head_dist.weight.T \
        + head.layers.head_dist.bias
    assert not torch.allclose(cls_score, dist_score)
    expected = (cls_score + dist_score) / 2
    torch.testing.assert_close(head(feats), expected)
    head.train()  # no "cannot train DeiT" path: the same average
    torch.testing.assert_close(head(feats), expected)
    preds = head.predict(feats, [DataSample() for _ in range(3)])
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), expected.softmax(dim=1))


def test_hard_distillation_loss_against_a_hand_computation():
    dist = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    teacher = torch.tensor([[0.1, 0.9, 0.0], [5.0, -1.0, 2.0]])
    # argmax teacher: classes 1 and 0; CE = logsumexp - logit of that class
    hand = ((math.log(sum(math.exp(v) for v in (2.0, 0.5, -1.0))) - 0.5) +
            (math.log(sum(math.exp(v) for v in (0.0, 1.0, 3.0))) - 0.0)) / 2
    assert hard_distillation_loss(dist, teacher).item() == pytest.approx(
        hand, rel=1e-6)


def test_head_loss_is_half_label_ce_plus_half_teacher_hard_ce():
    """1/2 CE(cls head, label-smoothed target) + 1/2 CE(distillation head,
    argmax teacher), each computed by hand."""
    from mmpretrain.structures import DataSample
    head = _tiny_head()
    cls_token, dist_token = torch.randn(2, 8), torch.randn(2, 8)
    labels = [3, 1]
    samples = [DataSample().set_gt_label(y) for y in labels]
    teacher_logits = torch.tensor([[0., 0., 4., 0., 0.], [0., 0., 0., 0., 9.]])
    losses = head.loss(((cls_token, dist_token), ), samples, teacher_logits)
    assert set(losses) == {'loss_cls', 'loss_distill'}

    cls_score, dist_score = head.logits(((cls_token, dist_token), ))
    target = torch.full((2, 5), 0.1 / 5)
    target[0, 3] += 0.9
    target[1, 1] += 0.9
    ce_labels = -(target * cls_score.log_softmax(dim=1)).sum(dim=1).mean()
    ce_teacher = -(dist_score.log_softmax(dim=1)[0, 2] +
                   dist_score.log_softmax(dim=1)[1, 4]) / 2
    torch.testing.assert_close(losses['loss_cls'], 0.5 * ce_labels)
    torch.testing.assert_close(losses['loss_distill'], 0.5 * ce_teacher)

    # mixup / cutmix targets (gt_score) go to the label term
    soft = torch.softmax(torch.randn(2, 5), dim=1)
    mixed = [DataSample().set_gt_score(s) for s in soft]
    losses = head.loss(((cls_token, dist_token), ), mixed, teacher_logits)
    smoothed = 0.9 * soft + 0.1 / 5
    torch.testing.assert_close(
        losses['loss_cls'],
        0.5 * -(smoothed * cls_score.log_softmax(dim=1)).sum(dim=1).mean())

    with pytest.raises(ValueError, match='distill_weight'):
        _tiny_head(distill_weight=1.5)


def test_distilled_vit_starts_from_a_plain_vit_checkpoint():
    """The generic-stage student has one extra token: the distillation
    token's position embedding is inserted at zero, the rest unchanged; a
    DeiT checkpoint (two extra tokens) loads as is."""
    from mmpretrain.registry import MODELS
    arch = dict(embed_dims=16, num_layers=1, num_heads=2,
                feedforward_channels=32)
    plain = MODELS.build(
        dict(type='VisionTransformer', arch=arch, img_size=32, patch_size=8))
    plain.init_weights()
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    state['pos_embed'].normal_()
    torch.manual_seed(0)
    student = MODELS.build(
        dict(type='DistilledViT', arch=arch, img_size=32, patch_size=8,
             out_type='cls_token'))
    token = student.dist_token.detach().clone()
    assert token.abs().sum() > 0  # trunc_normal(0.02), not zeros
    # the converter's / launcher's checks accept the file for this backbone
    from mmsdae.utils.checkpoint import check_against_backbone
    report = check_against_backbone(
        {f'backbone.{k}': v for k, v in state.items()}, student)
    assert report['missing'] == ['dist_token']
    assert any('distillation token' in note for note in report['notes'])
    missing, _ = student.load_state_dict(state, strict=False)
    assert missing == ['dist_token']
    pos = student.pos_embed.detach()
    assert pos.shape == (1, 16 + 2, 16)
    torch.testing.assert_close(pos[:, :1], state['pos_embed'][:, :1])
    assert torch.equal(pos[:, 1], torch.zeros(1, 16))
    torch.testing.assert_close(pos[:, 2:], state['pos_embed'][:, 1:])
    assert torch.equal(student.dist_token.detach(), token)
    cls_out, dist_out = student(torch.randn(2, 3, 32, 32))[-1]
    assert cls_out.shape == dist_out.shape == (2, 16)

    deit = {k: v.clone() for k, v in student.state_dict().items()}
    deit['pos_embed'].normal_()
    other = MODELS.build(
        dict(type='DistilledViT', arch=arch, img_size=32, patch_size=8))
    other.load_state_dict(deit)
    torch.testing.assert_close(other.pos_embed, deit['pos_embed'])


# --- detection: objectness-weighted imitation --------------------------------


def _one_hot_objectness(shape, hot, anchor=0, big=200.0):
    """RPN logits (N, A, H, W) whose max-over-anchors sigmoid is exactly 1
    at ``hot`` = (n, h, w) (anchor ``anchor``) and exactly 0 elsewhere
    (sigmoid(-200) underflows to 0 in float32)."""
    logits = torch.full(shape, -big)
    n, h, w = hot
    logits[n, anchor, h, w] = big
    return logits


def test_objectness_weighted_loss_only_where_the_teacher_sees_objects():
    """A weight map that is 1 at one position of each level and 0
    elsewhere: the feature term is the squared error summed over the
    channels at that position, the objectness term the BCE of its
    anchors; no gradient reaches any other position."""
    torch.manual_seed(0)
    shapes = [(2, 4, 5, 6), (2, 4, 3, 3)]
    hots = [(1, 2, 3), (0, 0, 2)]
    s_feats = [torch.randn(s, requires_grad=True) for s in shapes]
    t_feats = [torch.randn(s) for s in shapes]
    t_obj = [
        _one_hot_objectness((s[0], 3) + s[2:], hot)
        for s, hot in zip(shapes, hots)
    ]
    s_obj = [torch.randn((s[0], 3) + s[2:], requires_grad=True)
             for s in shapes]
    fpn, head = objectness_weighted_distillation(s_feats, t_feats, s_obj,
                                                 t_obj)
    hand_fpn, hand_head = 0.0, 0.0
    for s, t, so, (n, h, w) in zip(s_feats, t_feats, s_obj, hots):
        hand_fpn += ((t[n, :, h, w] - s[n, :, h, w])**2).sum().item()
        p = so[n, :, h, w].detach().sigmoid()
        target = torch.tensor([1.0, 0.0, 0.0])  # anchor 0 is the object
        hand_head += -(target * p.log() +
                       (1 - target) * (1 - p).log()).sum().item()
    assert fpn.item() == pytest.approx(hand_fpn, rel=1e-5)
    assert head.item() == pytest.approx(hand_head, rel=1e-5)

    (fpn + head).backward()
    for s, so, (n, h, w) in zip(s_feats, s_obj, hots):
        for grad in (s.grad, so.grad):
            assert grad[n, :, h, w].abs().sum() > 0
            grad[n, :, h, w] = 0
            assert torch.count_nonzero(grad) == 0

    # a teacher twice as sure at one of two positions weighs it twice
    weight = torch.full((1, 1, 1, 2), -200.0)
    weight[..., 0] = math.log(0.5 / 0.5)  # sigmoid 0.5
    weight[..., 1] = 200.0  # sigmoid 1
    s, t = torch.tensor([[[[1.0, 2.0]]]]), torch.zeros(1, 1, 1, 2)
    fpn, _ = objectness_weighted_distillation([s], [t], [weight.clone()],
                                              [weight])
    assert fpn.item() == pytest.approx((0.5 * 1 + 1 * 4) / 1.5)

    with pytest.raises(ValueError, match='same pyramid'):
        objectness_weighted_distillation([s], [t.expand(1, 2, 1, 2)],
                                         [weight], [weight])


def test_distillation_warm_up_factor():
    assert distill_warmup_factor(0, 500) == 0.0
    assert distill_warmup_factor(1, 500) == pytest.approx(1 / 500)
    assert distill_warmup_factor(250, 500) == pytest.approx(0.5)
    assert distill_warmup_factor(499, 500) == pytest.approx(499 / 500)
    assert distill_warmup_factor(500, 500) == 1.0
    assert distill_warmup_factor(10**6, 500) == 1.0
    assert distill_warmup_factor(0, 0) == 1.0


# --- segmentation: channel-wise divergence -----------------------------------


def _hand_cwd(s, t, tau):
    """Shu et al. Eq. 2-3 with Python floats."""
    n, c = s.shape[:2]
    total = 0.0
    for i in range(n):
        for j in range(c):
            ys = [v / tau for v in s[i, j].flatten().tolist()]
            yt = [v / tau for v in t[i, j].flatten().tolist()]
            zs = sum(math.exp(v) for v in ys)
            zt = sum(math.exp(v) for v in yt)
            for a, b in zip(ys, yt):
                ps, pt = math.exp(a) / zs, math.exp(b) / zt
                total += pt * math.log(pt / ps)
    return total * tau**2 / (n * c)


def test_channel_wise_divergence_against_a_hand_computation():
    torch.manual_seed(0)
    t = torch.randn(2, 3, 2, 2)
    assert channel_wise_divergence(t.clone(), t).abs().item() < 1e-6
    # a constant added to a channel does not change its spatial softmax
    assert channel_wise_divergence(t + 5.0, t).abs().item() < 1e-5

    s = t + torch.randn(2, 3, 2, 2)
    for tau in (1.0, 2.0, 4.0):
        assert channel_wise_divergence(s, t, tau).item() == pytest.approx(
            _hand_cwd(s, t, tau), rel=1e-5)
    # grows with the (temperature-scaled) divergence
    losses = [channel_wise_divergence(t + k * (s - t), t).item()
              for k in (0.25, 0.5, 1.0, 2.0)]
    assert losses == sorted(losses) and losses[0] > 0
    # differs from the released cross-entropy form by the teacher's
    # entropy only (same gradient)
    p_t = F.softmax(t.reshape(6, 4), dim=1)
    ce = (-p_t * F.log_softmax(s.reshape(6, 4), dim=1)).sum() / 6
    entropy = (-p_t * p_t.log()).sum() / 6
    torch.testing.assert_close(channel_wise_divergence(s, t), ce - entropy)

    with pytest.raises(ValueError, match='differ'):
        channel_wise_divergence(s, t[:, :2])


# --- the task models with their frozen teachers ------------------------------


def _cls_batch(model):
    from mmpretrain.structures import DataSample
    torch.manual_seed(3)
    images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
              for _ in range(4)]
    samples = [DataSample().set_gt_label(i % 10) for i in range(4)]
    return model.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)


def _det_batch(model, size=64):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    torch.manual_seed(3)
    sample = DetDataSample(
        metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                      scale_factor=(1.0, 1.0)))
    masks = torch.zeros(1, size, size, dtype=torch.uint8)
    masks[0, 8:40, 16:48] = 1
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[16.0, 8.0, 48.0, 40.0]]),
        labels=torch.tensor([3]),
        masks=BitmapMasks(masks.numpy(), size, size))
    image = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    return model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), True)


def _seg_batch(model, size=64):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(3)
    samples = []
    for _ in range(2):
        sample = SegDataSample(
            metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 150, (1, size, size)))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
              for _ in range(2)]
    return model.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)


BATCHES = {'cls': _cls_batch, 'det': _det_batch, 'seg': _seg_batch}


def _tiny_config(kind, tmp_path):
    """The tiny config, with fewer RoIs for the CPU (64 instead of 512
    sampled per image)."""
    cfg = tiny_specific_config(kind, tmp_path)
    if kind == 'det':
        cfg.model.train_cfg.rcnn.sampler.num = 64
        cfg.model.train_cfg.rpn_proposal.max_per_img = 64
    return cfg
DISTILL_KEYS = {
    'cls': {'loss_distill'},
    'det': {'loss_distill_fpn', 'loss_distill_obj'},
    'seg': {'loss_cwd'},
}


@pytest.fixture
def iteration():
    """Set the training iteration the detection warm-up reads."""
    hub = MessageHub.get_current_instance()
    info = hub.runtime_info
    missing = 'iter' not in info
    old = info.get('iter')

    def _set(value):
        hub.update_info('iter', value)

    yield _set
    if missing:
        info.pop('iter', None)
    else:
        hub.update_info('iter', old)


@pytest.mark.parametrize('kind', ['cls', 'det', 'seg'])
def test_task_teacher_is_loaded_frozen_and_out_of_the_optimizer(
        kind, tmp_path, iteration):
    """The teacher comes from its file bit-exactly, gets no gradient from
    the distillation loss, is absent from the optimizer the config builds
    (layer-wise decay constructor) and from the student's checkpoint."""
    cfg = _tiny_config(kind, tmp_path)
    model = build_tiny_student(kind, cfg)
    saved = torch.load(cfg.model.teacher.checkpoint)['state_dict']
    teacher = model.teacher
    loaded = teacher.teacher_state_dict()
    prefix = 'model.' if kind != 'cls' else ''
    for key, value in saved.items():
        assert torch.equal(loaded[prefix + key], value), key
    assert not teacher.training

    model.train()
    assert not teacher.training
    iteration(10**6)  # past the detection warm-up
    losses = model(**BATCHES[kind](model), mode='loss')
    assert DISTILL_KEYS[kind] <= set(losses), sorted(losses)
    for key in DISTILL_KEYS[kind]:
        assert losses[key].requires_grad and losses[key].item() > 0, key
    total, _ = model.parse_losses(losses)
    total.backward()
    assert all(p.grad is None and not p.requires_grad
               for p in teacher.parameters())
    grads = [p.grad for n, p in model.named_parameters()
             if n.startswith('backbone.')]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)

    with DefaultScope.overwrite_default_scope(SCOPES[kind]):
        optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    in_optim = {id(p) for g in optim.optimizer.param_groups
                for p in g['params']}
    assert not any(id(p) in in_optim for p in teacher.parameters())
    trainable = {id(p) for n, p in model.named_parameters()
                 if not n.startswith('teacher.') and p.requires_grad}
    assert in_optim == trainable
    assert [k for k in model.state_dict() if k.startswith('teacher.')] == [
        'teacher.fingerprint'
    ]
    if kind == 'det':  # the adapters train, at the full lr
        adapter = model.distill_adapters[0].weight
        group = next(g for g in optim.optimizer.param_groups
                     if any(p is adapter for p in g['params']))
        assert group['lr'] == pytest.approx(cfg.optim_wrapper.optimizer.lr)


def test_detection_distillation_ramps_in_over_the_warm_up(tmp_path,
                                                          iteration):
    """L_GT + r(i) (0.001 L_FPN + 0.1 L_head), r(i) = i / warmup_iters:
    nothing at iteration 0, half the raw terms at warmup / 2 (with unit
    weights), the weighted terms in full after; the ground-truth losses
    unchanged."""
    cfg = _tiny_config('det', tmp_path)
    cfg.model.warmup_iters = 500
    model = build_tiny_student('det', cfg)
    batch = _det_batch(model)
    results = {}
    for it, weights in ((0, (0.001, 0.1)), (250, (1.0, 1.0)),
                        (500, (0.001, 0.1))):
        model.fpn_weight, model.head_weight = weights
        iteration(it)
        torch.manual_seed(0)  # same RPN / RoI sampling
        with torch.no_grad():
            results[it] = model(**copy.deepcopy(batch), mode='loss')
    assert model.distill_factor() == 1.0
    # r(250) = 1/2 with unit weights: half the raw terms
    full, raw = results[500], {k: 2 * v for k, v in results[250].items()
                               if k.startswith('loss_distill')}
    for key, weight in (('loss_distill_fpn', 0.001),
                        ('loss_distill_obj', 0.1)):
        assert results[0][key].item() == 0.0
        assert raw[key].item() > 0
        assert full[key].item() == pytest.approx(
            weight * raw[key].item(), rel=1e-5)
    torch.testing.assert_close(results[0]['loss_rpn_cls'][0],
                               full['loss_rpn_cls'][0])


def test_whole_model_teacher_file_must_hold_every_tensor(tmp_path):
    """A detector teacher file without one of the teacher's tensors is
    refused (it would stay random), as for the pre-training teachers."""
    cfg = tiny_specific_config('det', tmp_path)
    path = cfg.model.teacher.checkpoint
    state = torch.load(path)['state_dict']
    del state['rpn_head.rpn_cls.weight']
    torch.save(dict(state_dict=state), path)
    with pytest.raises(TeacherCheckpointError,
                       match='rpn_head.rpn_cls.weight'):
        build_tiny_student('det', cfg)

    cfg.model.teacher.backbone = dict(type='VisionTransformer')
    with pytest.raises(ValueError, match='not both'):
        build_tiny_student('det', cfg)


def test_seg_teacher_needs_the_same_classes(tmp_path):
    cfg = tiny_specific_config('seg', tmp_path)
    cfg.model.teacher.model.decode_head.num_classes = 19
    cfg.model.teacher.model.auxiliary_head.num_classes = 19
    save_tiny_teacher('seg', cfg, cfg.model.teacher.checkpoint)
    with pytest.raises(ValueError, match='19 classes'):
        build_tiny_student('seg', cfg)


def test_cls_teacher_needs_the_same_classes(tmp_path):
    """A teacher with other classes than the student would give hard
    targets outside the student's classes: refused when built."""
    cfg = tiny_specific_config('cls', tmp_path)
    cfg.model.teacher.head.num_classes = 7
    save_tiny_teacher('cls', cfg, cfg.model.teacher.checkpoint)
    with pytest.raises(ValueError, match='predicts 7 classes, the student '
                       f'{cfg.model.head.num_classes}'):
        build_tiny_student('cls', cfg)


def test_classifier_predicts_with_the_averaged_heads(tmp_path):
    cfg = tiny_specific_config('cls', tmp_path)
    model = build_tiny_student('cls', cfg).eval()
    batch = _cls_batch(model)
    inputs = batch['inputs']
    with torch.no_grad():
        preds = model.predict(inputs)
        cls_score, dist_score = model.head.logits(model.extract_feat(inputs))
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]),
        ((cls_score + dist_score) / 2).softmax(dim=1))
    assert registry('cls').get('DistillImageClassifier') is type(model)
