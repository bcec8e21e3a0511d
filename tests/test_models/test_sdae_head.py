"""SdAE Eq. 3 (teacher normalization) and Eq. 4 (cosine loss)."""
import math

import pytest
import torch
from mmpretrain.registry import MODELS


def eq3_by_hand(feature, eps):
    mean = sum(feature) / len(feature)
    var = sum((v - mean) ** 2 for v in feature) / len(feature)
    return [(v - mean) / math.sqrt(var + eps) for v in feature]


def cosine_by_hand(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) *
                  math.sqrt(sum(y * y for y in b)))


def test_eq3_standardises_each_token_over_its_channels():
    head = MODELS.build(dict(type='SdAEHead', eps=1e-6))
    target = torch.tensor([[1.0, 2.0, 3.0, 6.0], [-4.0, 0.0, 0.5, 0.5]])
    got = head.normalize_target(target)
    for row, out in zip(target.tolist(), got.tolist()):
        assert out == pytest.approx(eq3_by_hand(row, 1e-6), rel=1e-6)
    # [1, 2, 3, 6]: mean 3, var (4 + 1 + 0 + 9) / 4 = 3.5
    assert got[0, 3].item() == pytest.approx(3 / math.sqrt(3.5 + 1e-6))


def test_eq3_epsilon_keeps_a_constant_feature_finite():
    head = MODELS.build(dict(type='SdAEHead', eps=1e-6))
    out = head.normalize_target(torch.full((1, 8), 5.0))
    assert torch.equal(out, torch.zeros(1, 8))


def test_eq4_is_one_minus_cosine_averaged_over_masked_tokens():
    torch.manual_seed(0)
    pred = torch.randn(2, 5, 6)
    target = torch.randn(2, 5, 6) * 3 + 1
    target_mask = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 1, 1, 0]]).bool()
    head = MODELS.build(dict(type='SdAEHead', eps=1e-6))
    loss = head.loss(pred, target, target_mask)

    terms = []
    for b in range(2):
        for i in range(5):
            if target_mask[b, i]:
                t = eq3_by_hand(target[b, i].tolist(), 1e-6)
                terms.append(1 - cosine_by_hand(pred[b, i].tolist(), t))
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_eq4_ignores_unmasked_positions_and_scores_zero_when_exact():
    head = MODELS.build(dict(type='SdAEHead'))
    target = torch.randn(1, 4, 8)
    pred = head.normalize_target(target) * 2.5  # cosine is scale-free
    pred[0, 3] = -pred[0, 3]  # wrong, but outside the mask
    mask = torch.tensor([[True, True, True, False]])
    assert head.loss(pred, target, mask).item() == pytest.approx(0, abs=1e-6)
    mask[0, 3] = True
    assert head.loss(pred, target, mask).item() == pytest.approx(
        2 / 4, abs=1e-5)  # one token with cos = -1 among four


def test_without_teacher_normalization_the_raw_feature_is_the_target():
    # Table 5 row 1: no teacher normalization. A target with a large common
    # offset: raw-target cosine differs from the normalized-target one.
    pred = torch.tensor([[[1.0, -1.0, 0.0]]])
    target = torch.tensor([[[11.0, 9.0, 10.0]]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    raw = MODELS.build(dict(type='SdAEHead', norm_target=False))
    normed = MODELS.build(dict(type='SdAEHead', norm_target=True))
    assert raw.loss(pred, target, mask).item() == pytest.approx(
        1 - cosine_by_hand([1, -1, 0], [11, 9, 10]), rel=1e-6)
    assert normed.loss(pred, target, mask).item() == pytest.approx(
        1 - cosine_by_hand([1, -1, 0], eq3_by_hand([11, 9, 10], 1e-6)),
        rel=1e-6)


def test_shape_mismatch_names_the_fix():
    head = MODELS.build(dict(type='SdAEHead'))
    with pytest.raises(ValueError, match='predict_feature_dim'):
        head.loss(torch.zeros(1, 4, 8), torch.zeros(1, 4, 6),
                  torch.ones(1, 4, dtype=torch.bool))


def test_bad_eps_is_refused():
    with pytest.raises(ValueError, match='eps'):
        MODELS.build(dict(type='SdAEHead', eps=0))
