"""The SdAE algorithm: student/teacher wiring, Eq. 7, teacher views."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS


def images(batch=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=g)


def manual_teacher_sequence(vit, img, patch_ids):
    """Encode one sequence token by token, written out independently."""
    patches = vit.patch_embed(img[None])[0][0]  # (N, C)
    rows = [vit.cls_token[0, 0] + vit.pos_embed[0, 0]]
    for i in patch_ids:
        rows.append(patches[i] + vit.pos_embed[0, 1 + i])
    x = torch.stack(rows)[None]
    for layer in vit.layers:
        x = layer(x)
    return vit.ln1(x)[0, 1:]


def test_student_sees_49_of_196_patches_at_vit_b_geometry():
    vit = MODELS.build(
        dict(type='SdAEViT', arch='b', img_size=224, patch_size=16))
    assert (vit.num_patches, vit.num_visible, vit.num_masked) == (196, 49, 147)


def test_teacher_sees_exactly_each_fold_with_its_position_embeddings(
        build_tiny):
    model = build_tiny()
    x = images()
    torch.manual_seed(1)
    _, _, ids_restore = model.backbone(x)
    masked = ids_restore.argsort(1)[:, model.backbone.num_visible:]
    teacher_ids, _ = model.teacher_input.sample(masked, 16)
    assert teacher_ids.shape == (2, 3, 4)
    with torch.no_grad():
        got = model.teacher.encode_patches(x, teacher_ids)
        for b in range(2):
            for f in range(3):
                want = manual_teacher_sequence(model.teacher, x[b],
                                               teacher_ids[b, f].tolist())
                torch.testing.assert_close(got[b, f], want, rtol=1e-5,
                                           atol=1e-5)


def _patch_pixels(patch_id, grid=4, patch=8):
    row, col = divmod(patch_id, grid)
    return (slice(None), slice(row * patch, (row + 1) * patch),
            slice(col * patch, (col + 1) * patch))


def test_folds_do_not_see_each_other_nor_the_visible_patches(build_tiny):
    model = build_tiny()
    x = images(batch=1)
    torch.manual_seed(3)
    _, mask, ids_restore = model.backbone(x)
    ids_shuffle = ids_restore.argsort(1)
    visible, masked = ids_shuffle[:, :4], ids_shuffle[:, 4:]
    teacher_ids, target_mask = model.teacher_input.sample(masked, 16)
    base = model.teacher_targets(x, teacher_ids)

    # change the pixels of one patch in fold 1: only fold 1 moves
    y = x.clone()
    y[0][_patch_pixels(teacher_ids[0, 1, 0].item())] += 5.0
    moved = (model.teacher_targets(y, teacher_ids) - base).abs().sum(-1)[0]
    fold_of = {p: f for f in range(3) for p in teacher_ids[0, f].tolist()}
    for pos in range(16):
        if fold_of.get(pos) == 1:
            assert moved[pos] > 1e-3
        else:
            assert moved[pos] < 1e-5

    # change every visible patch: no teacher target moves
    z = x.clone()
    for p in visible[0].tolist():
        z[0][_patch_pixels(p)] += 5.0
    torch.testing.assert_close(model.teacher_targets(z, teacher_ids), base)
    # and the targets sit exactly at the masked positions
    assert torch.equal(target_mask[0], mask[0].bool())


def test_teacher_starts_as_a_copy_of_the_initialized_student(build_tiny):
    model = build_tiny()
    for (name, s), t in zip(model.backbone.state_dict().items(),
                            model.teacher.state_dict().values()):
        assert torch.equal(s, t), name


def test_eq7_momentum_update(build_tiny):
    model = build_tiny()
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))
    old = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student = model.backbone.state_dict()
    model.momentum_update(0.96)
    for name, value in model.teacher.state_dict().items():
        torch.testing.assert_close(
            value, 0.96 * old[name] + 0.04 * student[name],
            rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError):
        model.momentum_update(1.5)


def test_teacher_gets_no_gradient_and_is_not_in_the_optimizer(build_tiny):
    model = build_tiny()
    model.train()
    assert not model.teacher.training  # no drop path in the teacher
    data = model.data_preprocessor(
        dict(inputs=torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8),
             data_samples=None), True)
    loss = model.loss(data['inputs'], None)['loss']
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert model.backbone.patch_embed.projection.weight.grad is not None
    assert model.neck.decoder_pred.weight.grad is not None

    wrapper = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            constructor='TrainableOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
            paramwise_cfg=dict(custom_keys={'bias': dict(decay_mult=0.)})))
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups
                    for p in g['params']}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert in_optimizer == trainable
    assert not in_optimizer & {id(p) for p in model.teacher.parameters()}


@pytest.mark.parametrize('teacher_input, targets', [
    (dict(mode='multi_fold', num_folds=3), 12),
    (dict(mode='multi_fold', num_folds=2), 12),
    (dict(mode='masked'), 12),
    (dict(mode='crop', crop_tokens=4), 4),
    (dict(mode='full'), 12),
])
def test_each_teacher_input_builds_and_trains(build_tiny, teacher_input,
                                              targets):
    model = build_tiny(teacher_input=teacher_input)
    x = images()
    latent, _, ids_restore = model.backbone(x)
    masked = ids_restore.argsort(1)[:, 4:]
    _, target_mask = model.teacher_input.sample(masked, 16)
    assert target_mask.sum(1).tolist() == [targets, targets]
    loss = model.loss(x, None)['loss']
    assert 0 < loss.item() < 2
    loss.backward()


def test_teacher_normalization_switch(build_tiny):
    # The teacher ends in a LayerNorm; with its initial affine (1, 0) its
    # output is already standardised and Eq. 3 changes nothing, so give the
    # final norm a trained-looking affine first (the same in both models).
    losses = []
    for norm_target in (True, False):
        model = build_tiny(head=dict(norm_target=norm_target))
        with torch.no_grad():
            model.teacher.ln1.weight.copy_(torch.linspace(0.5, 2.0, 32))
            model.teacher.ln1.bias.copy_(torch.linspace(-1.0, 3.0, 32))
        torch.manual_seed(5)
        losses.append(model.loss(images(), None)['loss'].item())
    assert abs(losses[0] - losses[1]) > 1e-3


@pytest.mark.parametrize('overrides, words', [
    (dict(teacher_input=dict(mode='multi_fold', num_folds=5)),
     'cannot be split into 5'),
    (dict(teacher_input=dict(mode='crop', crop_tokens=13)),
     'larger than the 12'),
    (dict(backbone=dict(mask_ratio=0.0)), r'outside \(0, 1\)'),
    (dict(backbone=dict(mask_ratio=1.0)), r'outside \(0, 1\)'),
    (dict(backbone=dict(mask_ratio=1.2)), r'outside \(0, 1\)'),
    (dict(backbone=dict(img_size=36)), 'not divisible by patch_size'),
    (dict(neck=dict(predict_feature_dim=192)), 'predict_feature_dim=32'),
    (dict(neck=dict(num_patches=64)), 'num_patches=16'),
    (dict(feature_encoder='decoder'), 'feature_encoder'),
])
def test_bad_values_are_refused_at_build_time(build_tiny, overrides, words):
    with pytest.raises(ValueError, match=words):
        build_tiny(**overrides)


@pytest.mark.parametrize('encoder', ['student', 'teacher'])
def test_feature_encoder_choice(build_tiny, encoder):
    model = build_tiny(feature_encoder=encoder)
    with torch.no_grad():
        model.teacher.patch_embed.projection.weight.add_(1.0)
    x = images()
    model.eval()
    feats = model.extract_feat(x)
    chosen = model.backbone if encoder == 'student' else model.teacher
    torch.testing.assert_close(feats[0], chosen(x, mask=None)[0])


def test_student_path_equals_encode_patches_on_the_visible_ids(build_tiny):
    # the student (mmpretrain's MAE masking path) and the teacher's
    # encode_patches agree when given the same patches
    model = build_tiny()
    model.eval()
    x = images()
    torch.manual_seed(7)
    latent, mask, ids_restore = model.backbone(x)
    ids_keep = ids_restore.argsort(1)[:, :model.backbone.num_visible]
    assert mask.sum(1).tolist() == [12, 12]
    assert not mask.gather(1, ids_keep).any()
    again = model.backbone.encode_patches(x, ids_keep[:, None], keep_cls=True)
    torch.testing.assert_close(latent, again[:, 0], rtol=1e-5, atol=1e-5)


def test_full_image_teacher_targets_are_the_plain_vit_features(build_tiny):
    # Table 5 rows 1-2: the teacher encodes the whole image in one sequence
    model = build_tiny(teacher_input=dict(mode='full'))
    x = images()
    ids = torch.arange(16).expand(2, 1, -1)
    with torch.no_grad():
        plain = model.teacher(x, mask=None)[0][:, 1:]  # drop the class token
    torch.testing.assert_close(model.teacher_targets(x, ids), plain,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('via', ['torch', 'mmengine'])
def test_checkpoint_without_teacher_starts_teacher_from_loaded_student(
        build_tiny, tmp_path, monkeypatch, via):
    from mmengine.runner import load_checkpoint

    import mmsdae.models.algorithms.ema_teacher as ema_module
    source = build_tiny()
    with torch.no_grad():
        for p in source.backbone.parameters():
            p.add_(torch.randn_like(p))
    student_only = {k: v for k, v in source.state_dict().items()
                    if not k.startswith('teacher.')}
    messages = []
    monkeypatch.setattr(ema_module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    target = build_tiny()
    if via == 'torch':
        target.load_state_dict(student_only, strict=False)
    else:
        path = tmp_path / 'student_only.pth'
        torch.save(dict(state_dict=student_only), path)
        load_checkpoint(target, str(path), map_location='cpu')
    for name, value in source.backbone.state_dict().items():
        torch.testing.assert_close(target.teacher.state_dict()[name], value)
    assert any('no "teacher" weights' in m for m in messages)

    # a checkpoint that has a teacher keeps it
    messages.clear()
    other = build_tiny()
    other.load_state_dict(source.state_dict())
    for name, value in source.teacher.state_dict().items():
        torch.testing.assert_close(other.teacher.state_dict()[name], value)
    assert not messages


def test_optimizer_excludes_teacher_without_paramwise_cfg(build_tiny):
    model = build_tiny()
    wrapper = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            constructor='TrainableOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-3)))
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups
                    for p in g['params']}
    assert in_optimizer == {id(p) for p in model.parameters()
                            if p.requires_grad}


def test_logged_cos_sim_is_the_mean_cosine_that_eq4_maximises(build_tiny):
    # CosineSimilarityLoss with shift 1: loss = 1 - mean cos, so the logged
    # (not optimised) cos_sim is 1 - loss, computed independently.
    model = build_tiny()
    losses = model.loss(torch.randn(2, 3, 32, 32), None)
    assert set(losses) == {'loss', 'cos_sim'}
    assert not losses['cos_sim'].requires_grad
    torch.testing.assert_close(losses['cos_sim'],
                               1 - losses['loss'].detach())
