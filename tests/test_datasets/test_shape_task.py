"""The shape task of the learning-signal benchmark: deterministic, one class
per shape, colour independent of the class."""
import colorsys

import numpy as np
import pytest

from mmsdae.datasets import ProceduralShapeTaskDataset, ShapeTaskGenerator
from mmsdae.datasets.procedural import SHAPE_TYPES


def test_image_is_a_function_of_seed_and_index():
    first = ShapeTaskGenerator(image_size=32, seed=3)
    second = ShapeTaskGenerator(image_size=32, seed=3)
    for index in (7, 0, 7):  # any call order
        image, label = first.generate(index)
        again, label_again = second.generate(index)
        np.testing.assert_array_equal(image, again)
        assert label == label_again == first.label(index)
    other, _ = ShapeTaskGenerator(image_size=32, seed=4).generate(7)
    assert not np.array_equal(first.generate(7)[0], other)


def test_classes_are_the_shapes_and_colour_is_not_the_class():
    generator = ShapeTaskGenerator(image_size=32, seed=0)
    assert generator.class_names == SHAPE_TYPES
    # the hue of the most saturated pixel of each image spreads over the
    # whole circle within one class (ShapesGenerator keeps it within +-12 deg)
    hues = {}
    for index in range(200):
        image, label = generator.generate(index)
        pixels = image.reshape(-1, 3) / 255.0
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
        hues.setdefault(label, []).append(hsv[hsv[:, 1].argmax(), 0])
    assert set(hues) == set(range(5))
    for values in hues.values():
        assert np.ptp(values) > 0.5  # more than half the hue circle


def test_dataset_renders_the_task_and_caches():
    dataset = ProceduralShapeTaskDataset(num_images=6, seed=2,
                                         image_size=32, cache_images=True)
    assert dataset.metainfo['classes'] == SHAPE_TYPES
    info = dataset.get_data_info(4)
    image, label = ShapeTaskGenerator(image_size=32, seed=2).generate(4)
    np.testing.assert_array_equal(info['img'], image[..., ::-1])  # BGR
    assert info['gt_label'] == label
    info['img'][:] = 0  # a pipeline writing in place spoils no cache entry
    np.testing.assert_array_equal(dataset.get_data_info(4)['img'],
                                  image[..., ::-1])


def test_bad_num_classes_names_the_fix():
    with pytest.raises(ValueError, match='num_classes=5'):
        ShapeTaskGenerator(num_classes=6)
