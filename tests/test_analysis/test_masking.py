"""vis_masking: the masks, teacher folds and decoder outputs of one batch
(SdAE Sec. 2.2 / Fig. 4(b) multi-fold masking, Eq. 3-4; RC-MAE Sec. 5;
MAE norm_pix)."""
import json
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from mmsdae.analysis import masking as vm
from mmsdae.analysis.checkpoints import (build_model, load_config,
                                         load_images, normalization_of)
from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'vis_masking.py')
CONFIGS = {
    'sdae': 'configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
    'rcmae': 'configs/rcmae/rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
    'mae': 'configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
}
NUM_COLUMNS = {'sdae': 3, 'mae': 4, 'rcmae': 5}
# demo geometry: 64 px / 8 px patches = 64 patches, 16 visible, 48 masked
N, NUM_VISIBLE, NUM_MASKED = 64, 16, 48


@pytest.fixture(autouse=True)
def _quiet():
    MMLogger.get_current_instance().setLevel(logging.ERROR)


def demo_model(method, **overrides):
    """A freshly initialised demo model (no training), in eval mode."""
    cfg = load_config(osp.join(ROOT, CONFIGS[method]))
    for key, value in overrides.items():
        cfg.model[key] = value
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    return model.eval()


def demo_batch(model, num_images=3):
    _, inputs = load_images(num_images=num_images, img_size=64, seed=0,
                            data_preprocessor=normalization_of(model))
    return inputs


def save_checkpoint(model, path):
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return str(path)


# ------------------------------------------------------ fold assignment ---
def sdae_result(teacher_input, seed=0):
    model = demo_model('sdae', teacher_input=teacher_input)
    return vm.analyze_batch(model, demo_batch(model), seed=seed)


def test_multi_fold_covers_each_masked_token_once():
    result = sdae_result(dict(mode='multi_fold', num_folds=3))
    fold, mask = result.fold, result.mask
    assert result.teacher_ids.shape == (3, 3, NUM_MASKED // 3)
    assert torch.equal(fold >= 0, mask)  # exactly the masked positions
    assert not (fold[~mask] >= 0).any()  # no visible token in any fold
    for b in range(3):
        counts = torch.bincount(fold[b][fold[b] >= 0], minlength=3)
        assert counts.tolist() == [16, 16, 16]  # each fold has n tokens
        seqs = [set(s.tolist()) for s in result.teacher_ids[b]]
        assert all(not (seqs[i] & seqs[j])
                   for i in range(3) for j in range(i + 1, 3))  # disjoint
        assert set().union(*seqs) == set(result.masked_ids[b].tolist())
        visible = set(result.visible_ids[b].tolist())
        assert len(visible) == NUM_VISIBLE and not visible & set().union(
            *seqs)
    # the folds are consecutive chunks of the mask's random order
    assert torch.equal(result.teacher_ids.reshape(3, -1), result.masked_ids)
    assert torch.equal(result.target_mask, mask)


def test_crop_assigns_only_the_crop_tokens():
    result = sdae_result(dict(mode='crop', crop_tokens=10))
    assert torch.equal(result.fold >= 0, result.target_mask)
    assert (result.fold >= 0).sum(1).tolist() == [10, 10, 10]
    assert not (result.fold[~result.mask] >= 0).any()
    assert torch.equal(result.teacher_ids[:, 0], result.masked_ids[:, :10])


def test_full_assigns_every_patch():
    result = sdae_result(dict(mode='full'))
    assert (result.fold == 0).all()
    assert torch.equal(result.target_mask, result.mask)  # loss: masked only


def test_drop_remainder_leaves_the_remainder_unassigned():
    result = sdae_result(dict(mode='multi_fold', num_folds=5,
                              drop_remainder=True))
    assert ((result.fold >= 0) & result.mask).sum(1).tolist() == [45] * 3
    assert torch.equal(result.fold >= 0, result.target_mask)


def test_fold_assignment_refuses_overlap_and_bad_ids():
    ids = torch.tensor([[[0, 1], [1, 2]]])
    with pytest.raises(ValueError, match='patch 1 of image 0'):
        vm.fold_assignment(ids, 4)
    with pytest.raises(ValueError, match='outside'):
        vm.fold_assignment(torch.tensor([[[0, 4]]]), 4)
    assert vm.fold_assignment(torch.tensor([[[3], [0]]]), 4).tolist() == \
        [[1, -1, -1, 0]]


# --------------------------------------------------------- SdAE cosine ---
def test_token_cosine_is_one_minus_the_head_loss_per_token():
    from mmpretrain.registry import MODELS
    head = MODELS.build(dict(type='SdAEHead'))
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 6, 8, generator=g)
    # features far from zero mean / unit variance, so Eq. 3 matters
    target = 3 * torch.randn(2, 6, 8, generator=g) + 5
    target_mask = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 0, 1]],
                               dtype=torch.bool)
    cos = vm.token_cosine(pred, target, target_mask, head)
    assert torch.isnan(cos[~target_mask]).all()
    for b, j in target_mask.nonzero().tolist():
        only = torch.zeros_like(target_mask)
        only[b, j] = True
        per_token = head.loss(pred, target, only)
        torch.testing.assert_close(1 - cos[b, j], per_token)
    torch.testing.assert_close(
        1 - cos[target_mask].mean(), head.loss(pred, target, target_mask))
    # a prediction equal to the normalised target scores 1
    perfect = head.normalize_target(target)
    assert torch.allclose(
        vm.token_cosine(perfect, target, target_mask, head)[target_mask],
        torch.ones(int(target_mask.sum())), atol=1e-5)


# ------------------------------------------------ MAE un-normalisation ---
def test_unnormalised_perfect_prediction_is_the_input():
    from mmpretrain.registry import MODELS
    head = MODELS.build(dict(type='MAEPretrainHead', norm_pix=True,
                             patch_size=8,
                             loss=dict(type='PixelReconstructionLoss',
                                       criterion='L2')))
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator()
                         .manual_seed(0)) * 2 + 1
    perfect = head.construct_target(inputs)
    assert not torch.allclose(head.unpatchify(perfect), inputs, atol=1e-2)
    torch.testing.assert_close(
        vm.pixel_reconstruction(head, perfect, inputs), inputs,
        atol=1e-4, rtol=1e-4)
    mask = torch.zeros(2, 16)
    mask[:, ::2] = 1
    wrong = torch.zeros(2, 3, 32, 32)
    pasted = head.patchify(vm.paste_visible(wrong, inputs, mask, head))
    assert torch.equal(pasted[:, 1::2], head.patchify(inputs)[:, 1::2])
    assert (pasted[:, ::2] == 0).all()
    head.norm_pix = False
    torch.testing.assert_close(
        vm.pixel_reconstruction(head, head.patchify(inputs), inputs), inputs)


# ------------------------------------------- the model's own code path ---
@pytest.mark.parametrize('method,overrides', [
    ('sdae', {}),
    ('mae', {}),
    ('rcmae', {}),
    ('rcmae', dict(teacher_mask='different')),
])
def test_analysis_reproduces_the_training_loss(method, overrides):
    """Same seed -> the masks ``model.loss`` draws: the numbers match."""
    model = demo_model(method, **overrides)
    inputs = demo_batch(model, 2)
    result = vm.analyze_batch(model, inputs, seed=7)
    torch.manual_seed(7)
    with torch.no_grad():
        losses = model.loss(inputs, None)
    for key, value in losses.items():
        assert result.losses[key] == pytest.approx(float(value), abs=1e-5)
    if method == 'sdae':
        assert 1 - result.losses['cos_sim'] == pytest.approx(
            float(losses['loss']), abs=1e-5)
    else:
        rec = losses['loss'] if method == 'mae' else losses['loss_rec']
        assert result.losses['mse_masked'] == pytest.approx(float(rec),
                                                            abs=1e-5)
    if overrides.get('teacher_mask') == 'different':
        # RC-MAE-D: the teacher's own mask, same size, not the student's
        teacher = result.teacher_ids[:, 0]
        assert teacher.shape == result.visible_ids.shape
        assert not torch.equal(teacher.sort(1)[0],
                               result.visible_ids.sort(1)[0])
    elif method == 'rcmae':
        assert torch.equal(result.teacher_ids[:, 0], result.visible_ids)
    # another seed, other masks
    other = vm.analyze_batch(model, inputs, seed=8)
    assert not torch.equal(other.visible_ids, result.visible_ids)


# ------------------------------------------------------------------ CLI ---


@pytest.mark.parametrize('method', ['sdae', 'rcmae', 'mae'])
def test_cli_writes_png_and_json(method, tmp_path, capsys):
    from PIL import Image
    ckpt = save_checkpoint(demo_model(method), tmp_path / 'model.pth')
    out_dir = tmp_path / 'out'
    rc = load_tool(TOOL).main([
        osp.join(ROOT, CONFIGS[method]), ckpt, '--num-images', '2',
        '--seed', '3', '--out-dir', str(out_dir)
    ])
    assert rc == 0, capsys.readouterr().err
    stem = osp.splitext(osp.basename(CONFIGS[method]))[0] + '_seed3'
    with Image.open(out_dir / f'{stem}.png') as png:
        size = png.size
    assert size == vm.figure_size_px(2, NUM_COLUMNS[method])
    assert size == (NUM_COLUMNS[method] * vm.PANEL_PX,
                    2 * vm.PANEL_PX + vm.HEADER_PX)
    record = json.loads((out_dir / f'{stem}.json').read_text())
    assert record['method'] == method and record['seed'] == 3
    assert len(record['images']) == 2
    for image in record['images']:
        assert len(image['visible_ids']) == NUM_VISIBLE
        assert sorted(image['visible_ids'] + image['masked_ids']) == \
            list(range(N))
        assert len(image['fold_of_patch']) == N
        if method == 'sdae':
            assert len(image['teacher_sequences']) == 3
            assert sorted(sum(image['teacher_sequences'], [])) == \
                sorted(image['masked_ids']) == image['target_positions']
            cos = image['cosine']
            assert [j for j, c in enumerate(cos) if c is not None] == \
                image['target_positions']
        else:
            assert image['target_positions'] == sorted(image['masked_ids'])
            assert len(image['mse']) == N and None not in image['mse']
            assert ('teacher_mse' in image) == (method == 'rcmae')
            assert len(image['teacher_sequences']) == \
                (1 if method == 'rcmae' else 0)
    assert 'figure:' in capsys.readouterr().out


def test_cli_missing_checkpoint_names_the_path(tmp_path, capsys):
    missing = str(tmp_path / 'nope' / 'epoch_10.pth')
    rc = load_tool(TOOL).main([osp.join(ROOT, CONFIGS['sdae']), missing,
                           '--out-dir', str(tmp_path)])
    assert rc == 1
    assert missing in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match='epoch_10.pth'):
        vm.load_model(osp.join(ROOT, CONFIGS['sdae']), missing)


def test_encoder_only_checkpoint_is_refused(tmp_path):
    model = demo_model('mae')
    path = tmp_path / 'encoder.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               model.backbone.state_dict().items()}}, path)
    with pytest.raises(KeyError, match='does not fit'):
        vm.load_model(osp.join(ROOT, CONFIGS['mae']), str(path))


def test_loaded_checkpoint_gives_the_same_pictures(tmp_path):
    model = demo_model('sdae')
    ckpt = save_checkpoint(model, tmp_path / 'sdae.pth')
    loaded = vm.load_model(osp.join(ROOT, CONFIGS['sdae']), ckpt)
    inputs = demo_batch(model, 2)
    a = vm.analyze_batch(model, inputs, seed=1)
    b = vm.analyze_batch(loaded, inputs, seed=1)
    assert torch.equal(a.teacher_ids, b.teacher_ids)
    assert torch.allclose(a.cosine.nan_to_num(), b.cosine.nan_to_num())
    assert np.array_equal(a.images, b.images)
