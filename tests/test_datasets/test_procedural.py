# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of the embedded procedural dataset (CPU only, a few seconds)."""
import os
import re

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

import mmsdae.datasets  # noqa: F401  (registers ProceduralShapesDataset)
from mmsdae.datasets import ProceduralShapesDataset, ShapesGenerator

SMALL = dict(num_images=40, image_size=32, num_classes=10, seed=0)


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    init_default_scope('mmpretrain')


def build(**kwargs):
    return DATASETS.build(dict(type='ProceduralShapesDataset', **kwargs))


def image(dataset, idx):
    return dataset.get_data_info(idx)['img']


# ----------------------------------------------------------------------------
# Determinism, dtype and shape
# ----------------------------------------------------------------------------
def test_generator_is_a_pure_function_of_its_inputs():
    first = ShapesGenerator(image_size=48, num_classes=10, seed=3)
    second = ShapesGenerator(image_size=48, num_classes=10, seed=3)
    forward = [first.generate(i) for i in range(6)]
    np.random.seed(123)  # the global numpy state must not matter
    backward = [second.generate(i) for i in reversed(range(6))][::-1]
    for (img_a, label_a), (img_b, label_b) in zip(forward, backward):
        assert label_a == label_b
        np.testing.assert_array_equal(img_a, img_b)
    assert [first.label(i) for i in range(6)] == [lb for _, lb in forward]


def test_dataset_is_deterministic_across_instances_and_call_orders():
    first, second = build(**SMALL), build(**SMALL)
    order_a = {i: image(first, i) for i in (5, 2, 5, 0)}
    order_b = {i: image(second, i) for i in (0, 2, 5)}
    for i in (0, 2, 5):
        np.testing.assert_array_equal(order_a[i], order_b[i])
    assert (first.get_gt_labels() == second.get_gt_labels()).all()


def test_different_seeds_or_indices_give_different_images():
    seed0, seed1 = build(**SMALL), build(**{**SMALL, 'seed': 1})
    assert not np.array_equal(image(seed0, 0), image(seed1, 0))
    assert not np.array_equal(image(seed0, 0), image(seed0, 1))
    assert (seed0.get_gt_labels() != seed1.get_gt_labels()).any()


def test_data_info_fields_dtype_and_bgr_order():
    dataset = build(**SMALL)
    info = dataset.get_data_info(3)
    img = info['img']
    assert img.dtype == np.uint8 and img.shape == (32, 32, 3)
    assert info['img_shape'] == info['ori_shape'] == (32, 32)
    assert info['idx'] == info['sample_idx'] == 3
    assert isinstance(info['gt_label'], int)
    rgb, label = ShapesGenerator(32, 10, 0).generate(3)
    np.testing.assert_array_equal(img, rgb[..., ::-1])
    assert label == info['gt_label']


def test_images_are_rendered_lazily_not_stored():
    dataset = build(**SMALL, serialize_data=False)
    assert len(dataset) == 40
    assert set(dataset.data_list[0]) == {'idx', 'gt_label'}
    lazy = build(**SMALL, lazy_init=True)
    assert not lazy._fully_initialized
    np.testing.assert_array_equal(image(lazy, 7), image(dataset, 7))


def test_indices_subset_keeps_generator_indices():
    full = build(**SMALL)
    subset = build(**SMALL, indices=[3, 5])
    assert len(subset) == 2
    assert subset.get_data_info(1)['idx'] == 5
    np.testing.assert_array_equal(image(subset, 1), image(full, 5))


def test_metainfo_classes():
    dataset = build(**SMALL)
    assert len(dataset.CLASSES) == 10
    assert dataset.CLASSES[0] == 'red_ellipse'
    assert len(set(dataset.CLASSES)) == 10
    names = tuple(f'class_{i}' for i in range(3))
    custom = build(**{**SMALL, 'num_classes': 3}, metainfo=dict(classes=names))
    assert custom.CLASSES == names
    old_style = build(**{**SMALL, 'num_classes': 3}, classes=list(names))
    assert old_style.CLASSES == names


# ----------------------------------------------------------------------------
# Content: structure and learnable labels
# ----------------------------------------------------------------------------
def test_images_have_structure():
    dataset = build(**{**SMALL, 'image_size': 64})
    for idx in range(20):
        img = image(dataset, idx).astype(np.int64)
        assert img.std() > 15  # not flat
        # Colours quantised to 3 bits per channel.
        quantised = (img // 32).reshape(-1, 3)
        codes = (quantised[:, 0] * 8 + quantised[:, 1]) * 8 + quantised[:, 2]
        shares = np.bincount(codes, minlength=512) / codes.size
        assert (shares >= 0.01).sum() >= 4  # several colours cover >= 1% each
        assert shares.max() < 0.9  # no single colour covers the image
        # Edges: steps far above the pixel noise (std 5 intensity levels).
        steps = np.maximum(
            np.abs(np.diff(img, axis=0))[:, :-1].max(-1),
            np.abs(np.diff(img, axis=1))[:-1].max(-1))
        edge_fraction = (steps > 40).mean()
        assert 0.01 < edge_fraction < 0.8


def test_labels_in_range_and_all_classes_occur():
    dataset = build(num_images=200, image_size=32, num_classes=10, seed=0)
    labels = dataset.get_gt_labels()
    assert labels.shape == (200, )
    assert labels.min() >= 0 and labels.max() < 10
    assert set(labels.tolist()) == set(range(10))
    assert dataset.get_cat_ids(4) == [int(labels[4])]


def colour_histogram(img, bins=4):
    """Normalised joint colour histogram with ``bins`` levels a channel."""
    quantised = img.astype(np.int64) * bins // 256
    codes = (quantised[..., 0] * bins + quantised[..., 1]) * bins
    codes = codes + quantised[..., 2]
    counts = np.bincount(codes.ravel(), minlength=bins**3)
    return counts / counts.sum()


def test_label_is_recoverable_from_colours():
    """A nearest-class-mean on colour histograms beats chance by far.

    The colour family of the foreground is one of the two class attributes,
    so colour alone can tell at most 6 of the 10 classes apart (about 60%
    accuracy); chance is 10%.
    """
    num_train, num_test = 400, 200
    dataset = build(
        num_images=num_train + num_test,
        image_size=32,
        num_classes=10,
        seed=0)
    features = np.stack(
        [colour_histogram(image(dataset, i)) for i in range(len(dataset))])
    labels = dataset.get_gt_labels()
    train_x, test_x = features[:num_train], features[num_train:]
    train_y, test_y = labels[:num_train], labels[num_train:]
    class_means = np.stack(
        [train_x[train_y == c].mean(0) for c in range(10)])
    distances = ((test_x[:, None] - class_means[None])**2).sum(-1)
    accuracy = (distances.argmin(1) == test_y).mean()
    assert accuracy > 0.3


# ----------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('load_type',
                         ['LoadImageFromFile', 'mmpretrain.LoadImageFromFile'])
def test_pipeline_starting_with_load_image_from_file(load_type):
    dataset = build(
        **SMALL,
        pipeline=[
            dict(type=load_type),
            dict(
                type='RandomResizedCrop', scale=64,
                crop_ratio_range=(0.2, 1.0)),
            dict(type='PackInputs'),
        ])
    names = [type(t).__name__ for t in dataset.pipeline.transforms]
    assert names == ['RandomResizedCrop', 'PackInputs']
    packed = dataset[0]
    assert tuple(packed['inputs'].shape) == (3, 64, 64)
    assert int(packed['data_samples'].gt_label) == dataset.get_cat_ids(0)[0]


# ----------------------------------------------------------------------------
# Folder mode
# ----------------------------------------------------------------------------
def write_image_folder(root):
    """Write ``root/<class>/<i>.JPEG`` images of 2 classes x 2 images."""
    sizes = {}
    for class_name, size in (('cat', (20, 30)), ('dog', (24, 16))):
        (root / class_name).mkdir(parents=True)
        for i in range(2):
            img = np.full(size + (3, ), 60 * i + 50, dtype=np.uint8)
            path = root / class_name / f'{i}.JPEG'
            assert cv2.imwrite(str(path), img)
            sizes[os.path.normpath(path)] = size
    return sizes


def test_folder_mode_behaves_like_custom_dataset(tmp_path):
    sizes = write_image_folder(tmp_path)
    dataset = build(
        data_root=str(tmp_path),
        num_images=1000,  # procedural arguments are ignored
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')])
    assert not dataset.procedural
    assert len(dataset) == 4
    assert dataset.CLASSES == ('cat', 'dog')
    assert dataset.get_gt_labels().tolist() == [0, 0, 1, 1]
    assert type(dataset.pipeline.transforms[0]).__name__ == \
        'LoadImageFromFile'
    for idx in range(4):
        path = os.path.normpath(dataset.get_data_info(idx)['img_path'])
        packed = dataset[idx]
        assert tuple(packed['inputs'].shape) == (3, ) + sizes[path]


def test_folder_mode_without_labels(tmp_path):
    write_image_folder(tmp_path)
    dataset = build(data_root=str(tmp_path), with_label=False)
    assert len(dataset) == 4
    assert 'gt_label' not in dataset.get_data_info(0)


def test_missing_folder_raises_file_not_found(tmp_path):
    missing = str(tmp_path / 'no_such_imagenet')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        build(data_root=missing)
    with pytest.raises(FileNotFoundError, match='data_root'):
        build(data_root=missing)


# ----------------------------------------------------------------------------
# Argument validation
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('name, value', [
    ('num_images', 0),
    ('num_images', -3),
    ('num_images', 2.5),
    ('image_size', 7),
    ('image_size', '224'),
    ('num_classes', 0),
    ('num_classes', ShapesGenerator.MAX_NUM_CLASSES + 1),
    ('num_classes', 1.0),
    ('seed', -1),
    ('seed', 0.5),
    ('seed', None),
])
def test_bad_arguments_raise_value_error(name, value):
    with pytest.raises(ValueError, match=name):
        build(**{**SMALL, name: value})


def test_mismatched_class_names_raise_value_error():
    with pytest.raises(ValueError, match='num_classes'):
        build(**SMALL, metainfo=dict(classes=('a', 'b')))


def test_direct_construction_without_registry():
    dataset = ProceduralShapesDataset(num_images=3, image_size=16)
    assert len(dataset) == 3
    assert image(dataset, 2).shape == (16, 16, 3)
