"""Teacher views of SdAE Sec. 2.2 / Table 5 / Fig. 4(b)."""
import pytest
import torch

from mmsdae.models import TeacherInput


def random_masked_ids(batch, num_patches, num_masked, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randperm(num_patches, generator=g)
                       for _ in range(batch)])
    return ids[:, num_patches - num_masked:]


def test_vit_b_three_folds_of_49_are_disjoint_and_cover_the_masked_set():
    # ViT-B/16 at 224 px, mask 0.75: 196 patches, 147 masked = 3 x 49
    masked = random_masked_ids(4, 196, 147)
    teacher_ids, target_mask = TeacherInput('multi_fold', 3).sample(
        masked, 196)
    assert teacher_ids.shape == (4, 3, 49)
    for b in range(4):
        folds = [set(teacher_ids[b, f].tolist()) for f in range(3)]
        assert all(len(f) == 49 for f in folds)
        assert not folds[0] & folds[1] and not folds[0] & folds[2] \
            and not folds[1] & folds[2]
        assert set().union(*folds) == set(masked[b].tolist())
        assert set(target_mask[b].nonzero().flatten().tolist()) == set(
            masked[b].tolist())


def test_folds_are_a_random_split_not_raster_order():
    masked = random_masked_ids(64, 196, 147)
    teacher_ids, _ = TeacherInput('multi_fold', 3).sample(masked, 196)
    # with a random split, fold 0 is not simply the 49 lowest indices
    lowest = masked.sort(dim=1).values[:, :49]
    same = (teacher_ids[:, 0].sort(dim=1).values == lowest).all(dim=1)
    assert same.float().mean() < 0.05


def test_masked_mode_is_one_sequence_of_all_masked_patches():
    masked = random_masked_ids(2, 196, 147)
    teacher_ids, target_mask = TeacherInput('masked').sample(masked, 196)
    assert teacher_ids.shape == (2, 1, 147)
    assert target_mask.sum(dim=1).tolist() == [147, 147]


def test_crop_is_a_subset_of_k_masked_patches_and_targets_only_those():
    masked = random_masked_ids(3, 196, 147)
    teacher_ids, target_mask = TeacherInput('crop', crop_tokens=49).sample(
        masked, 196)
    assert teacher_ids.shape == (3, 1, 49)
    for b in range(3):
        crop = set(teacher_ids[b, 0].tolist())
        assert len(crop) == 49 and crop <= set(masked[b].tolist())
        assert set(target_mask[b].nonzero().flatten().tolist()) == crop


def test_full_image_encodes_all_patches_but_targets_only_masked():
    masked = random_masked_ids(2, 196, 147)
    teacher_ids, target_mask = TeacherInput('full').sample(masked, 196)
    assert teacher_ids.shape == (2, 1, 196)
    assert teacher_ids[0, 0].tolist() == list(range(196))
    assert set(target_mask[1].nonzero().flatten().tolist()) == set(
        masked[1].tolist())


@pytest.mark.parametrize('kwargs, words', [
    (dict(mode='multi_fold', num_folds=4), 'cannot be split into 4'),
    (dict(mode='crop', crop_tokens=148), 'larger than the 147'),
])
def test_settings_that_do_not_fit_the_masked_set_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        TeacherInput(**kwargs).check(196, 147)


@pytest.mark.parametrize('kwargs, words', [
    (dict(mode='folds'), 'unknown'),
    (dict(mode='multi_fold', num_folds=0), 'positive integer'),
    (dict(mode='multi_fold', num_folds=True), 'positive integer'),
    (dict(mode='multi_fold', num_folds=2.0), 'positive integer'),
    (dict(mode='crop'), 'crop_tokens=None'),
    (dict(mode='crop', crop_tokens=0), 'crop_tokens=0'),
    # options the chosen mode would silently ignore
    (dict(mode='multi_fold', crop_tokens=49), r"does not use \['crop_tokens'\]"),
    (dict(mode='full', num_folds=5), r"does not use \['num_folds'\]"),
    (dict(mode='masked', num_folds=4), r"does not use \['num_folds'\]"),
    (dict(mode='crop', crop_tokens=4, drop_remainder=True),
     r"does not use \['drop_remainder'\]"),
])
def test_bad_options_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        TeacherInput(**kwargs)


def test_default_is_three_folds():
    assert TeacherInput().num_folds == 3


def test_fig4b_four_folds_of_36_with_the_released_remainder_drop():
    # Fig. 4(b): the 147 masked patches of ViT-B/16 as 4 x 36. Refused by
    # default (3 patches would get no target), allowed with drop_remainder.
    with pytest.raises(ValueError, match=r'\[1, 3, 7, 21, 49, 147\]'):
        TeacherInput('multi_fold', 4).check(196, 147)
    with pytest.raises(ValueError, match='drop_remainder=True'):
        TeacherInput('multi_fold', 4).check(196, 147)
    masked = random_masked_ids(3, 196, 147)
    teacher_ids, target_mask = TeacherInput(
        'multi_fold', 4, drop_remainder=True).sample(masked, 196)
    assert teacher_ids.shape == (3, 4, 36)
    assert target_mask.sum(dim=1).tolist() == [144] * 3
    for b in range(3):
        folds = teacher_ids[b].flatten().tolist()
        assert len(set(folds)) == 144
        assert set(folds) <= set(masked[b].tolist())
        assert set(target_mask[b].nonzero().flatten().tolist()) == set(folds)


def test_more_folds_than_masked_patches_is_refused():
    with pytest.raises(ValueError, match='more than the 12 masked'):
        TeacherInput('multi_fold', 13, drop_remainder=True).check(16, 12)
