# Copyright (c) OpenMMLab. All rights reserved.
"""A procedural task where the class is the *shape* and nothing else
(colour, texture, background, clutter, scale, aspect, position and rotation
are random), so colour histograms and random ViTs stay weak on it
(:mod:`mmsdae.analysis.learning_signal`).
"""
from typing import Tuple

import numpy as np
from mmpretrain.registry import DATASETS

from .procedural import (CLUTTER_HALF_SIZE, PIXEL_NOISE_STD, SHAPE_TYPES,
                         ProceduralShapesDataset, ShapesGenerator, blend,
                         hsv_colour, muted_colour, texture_field,
                         uniform_noise)

# Geometry of the class-defining shape, in fractions of the image size
# (wider ranges than ShapesGenerator's, so position and scale carry no
# information).
TASK_HALF_SIZE = (0.25, 0.38)
TASK_CENTRE = (0.3, 0.7)
# Any hue, saturated enough to stand out from the muted background.
TASK_SATURATION = (0.5, 1.0)
TASK_VALUE = (0.5, 1.0)
TASK_NUM_CLUTTER = (0, 3)  # high exclusive
# Fills of the background and of the foreground: smooth ones. The periodic
# textures of ShapesGenerator (stripes, checkerboard) are left to the
# clutter: on 64 px images with 8 px patches a tiny encoder spends a short
# run reconstructing them (measured, see the configs' README).
TASK_BACKGROUND_TEXTURES = ('gradient', 'noise')
TASK_SHAPE_TEXTURES = ('solid', 'gradient')


class ShapeTaskGenerator(ShapesGenerator):
    """Deterministic images whose class is the foreground shape only.

    Class ``c`` shows ``SHAPE_TYPES[c]``; everything else (the ``TASK_*``
    ranges above) is drawn independently of the class from
    ``default_rng([seed, index])``; nothing occludes the shape.
    """

    MAX_NUM_CLASSES = len(SHAPE_TYPES)

    def __init__(self,
                 image_size: int = 64,
                 num_classes: int = 5,
                 seed: int = 0):
        if not 1 <= num_classes <= self.MAX_NUM_CLASSES:
            raise ValueError(
                f'num_classes must be in [1, {self.MAX_NUM_CLASSES}] (one '
                f'per shape type), but got {num_classes!r}: use '
                'num_classes=5.')
        super().__init__(
            image_size=image_size, num_classes=num_classes, seed=seed)

    @property
    def class_names(self) -> Tuple[str, ...]:
        return SHAPE_TYPES[:self.num_classes]

    @staticmethod
    def class_attributes(label: int) -> Tuple[str, str]:
        """``('any', shape type)``: the colour is not part of the class."""
        return 'any', SHAPE_TYPES[label]

    def background(self, rng: np.random.Generator) -> np.ndarray:
        """A muted smooth background (gradient or smooth noise)."""
        kind = TASK_BACKGROUND_TEXTURES[rng.integers(
            len(TASK_BACKGROUND_TEXTURES))]
        colours = (muted_colour(rng), muted_colour(rng))
        half = self.image_size / 2.0
        field = texture_field(rng, kind, self._coords[:, None],
                              self._coords[None, :], (half, half), half,
                              self.image_size)
        return blend(colours, field)

    def generate(self, index: int) -> Tuple[np.ndarray, int]:
        """Render image ``index``: ``(uint8 HxWx3 RGB, label)``."""
        rng = self._rng(index)
        label = self._draw_label(rng)
        size = self.image_size
        canvas = self.background(rng)
        for _ in range(rng.integers(*TASK_NUM_CLUTTER)):
            self.paint_random_shape(rng, canvas, CLUTTER_HALF_SIZE)
        centre = rng.uniform(*TASK_CENTRE, size=2)
        half_size = rng.uniform(*TASK_HALF_SIZE)
        colours = tuple(
            hsv_colour(rng.uniform(), rng.uniform(*TASK_SATURATION),
                       rng.uniform(*TASK_VALUE)) for _ in range(2))
        kind = TASK_SHAPE_TEXTURES[rng.integers(len(TASK_SHAPE_TEXTURES))]
        self.paint_shape(rng, canvas, SHAPE_TYPES[label], centre,
                         half_size, colours, kind)
        canvas += uniform_noise(rng, (size, size, 3), PIXEL_NOISE_STD)
        image = np.clip(canvas * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
        return image, label


@DATASETS.register_module()
class ProceduralShapeTaskDataset(ProceduralShapesDataset):
    """:class:`ProceduralShapesDataset` rendering :class:`ShapeTaskGenerator`
    images (the class is the shape; colour, texture, clutter, scale,
    position and rotation are random). Same arguments, procedural mode only
    in practice; ``num_classes`` defaults to 5 (all shapes) and
    ``image_size`` to 64.

    Args:
        cache_images (bool): Keep every rendered image in memory (3 x S x S
            bytes each) so that later epochs skip the rendering. Each data
            loader worker holds its own cache. Defaults to False.
    """

    def __init__(self, *args, num_classes: int = 5, image_size: int = 64,
                 cache_images: bool = False, **kwargs):
        self._image_cache = {} if cache_images else None
        super().__init__(
            *args, num_classes=num_classes, image_size=image_size, **kwargs)

    def render(self, image_idx: int) -> dict:
        if self._image_cache is None:
            return super().render(image_idx)
        if image_idx not in self._image_cache:
            self._image_cache[image_idx] = super().render(image_idx)
        cached = self._image_cache[image_idx]
        return dict(cached, img=cached['img'].copy())

    def _procedural_metainfo(self, metainfo, classes) -> dict:
        # Called once by ProceduralShapesDataset.__init__ right after it
        # built its ShapesGenerator (which checked the arguments): swap in
        # the shape-only generator before the class names are read.
        base = self.generator
        self.generator = ShapeTaskGenerator(
            image_size=base.image_size,
            num_classes=base.num_classes,
            seed=base.seed)
        return super()._procedural_metainfo(metainfo, classes)
