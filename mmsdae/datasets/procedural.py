# Copyright (c) OpenMMLab. All rights reserved.
"""An embedded, download-free default dataset of procedural images:
:class:`ShapesGenerator` renders them, :class:`ProceduralShapesDataset`
serves them (or an image folder, as ``CustomDataset``)."""
import colorsys
import math
import numbers
import os
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.fileio import get_file_backend
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.base_dataset import BaseDataset
from mmpretrain.registry import DATASETS

from ..utils.constants import IMAGE_EXTENSIONS

# Foreground shape types the generator can render.
SHAPE_TYPES = ('ellipse', 'rectangle', 'triangle', 'star', 'cross')

# Colour families of the foreground shape: (name, hue in degrees).
COLOUR_FAMILIES = (('red', 0.0), ('yellow', 60.0), ('green', 120.0),
                   ('cyan', 180.0), ('blue', 240.0), ('magenta', 300.0))

# Texture kinds used to fill the background and the shapes. Every texture is
# a scalar field ``t`` in [0, 1] that blends two colours.
BACKGROUND_TEXTURES = ('gradient', 'stripes', 'checkerboard', 'noise')
SHAPE_TEXTURES = ('solid', 'gradient', 'stripes', 'checkerboard', 'noise')

# Geometry, in fractions of the image size.
FOREGROUND_HALF_SIZE = (0.24, 0.36)
FOREGROUND_CENTRE = (0.35, 0.65)
CLUTTER_HALF_SIZE = (0.05, 0.15)
OCCLUDER_HALF_SIZE = (0.04, 0.08)
STRIPE_PERIOD = (0.03, 0.15)
CHECKER_CELL = (0.04, 0.15)

# Number of background clutter shapes (drawn below the foreground) and of
# small occluders (drawn on top of it); ``high`` is exclusive.
NUM_CLUTTER = (2, 6)
NUM_OCCLUDERS = (0, 3)

# The foreground is saturated and bright, clutter and background are muted,
# so the colour family of the foreground stays the dominant vivid colour.
FOREGROUND_HUE_JITTER = 12.0  # degrees
FOREGROUND_SATURATION = (0.7, 1.0)
FOREGROUND_VALUE = (0.6, 1.0)
MUTED_SATURATION = (0.0, 0.45)
MUTED_VALUE = (0.25, 0.9)

STAR_POINTS = 5
STAR_INNER_RADIUS = 0.45  # relative to the outer radius
CROSS_ARM_WIDTH = 0.35  # relative to the arm length
PIXEL_NOISE_STD = 0.02  # in [0, 1] intensity units (5 of 255 levels)


class ShapesGenerator:
    """Deterministic generator of labelled procedural images.

    A large foreground shape whose type and colour family are the class
    (class ``c``: ``SHAPE_TYPES[c % 5]`` in ``COLOUR_FAMILIES[c % 6]``; 5 and
    6 are coprime, so the first 30 classes are all pairs) on a textured
    background with muted clutter and small occluders, plus pixel noise.
    Image ``index`` comes from ``default_rng([seed, index])`` alone (any
    order, process or worker), with geometry in units of the image size.

    Args:
        image_size (int): Height and width of the square images.
        num_classes (int): At most :attr:`MAX_NUM_CLASSES`.
        seed (int): Non-negative seed of the whole image collection.
    """

    MAX_NUM_CLASSES = len(SHAPE_TYPES) * len(COLOUR_FAMILIES)

    def __init__(self,
                 image_size: int = 224,
                 num_classes: int = 10,
                 seed: int = 0):
        check_generator_args(
            image_size=image_size, num_classes=num_classes, seed=seed)
        self.image_size = int(image_size)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        # Pixel-centre coordinates, shared by all images of this size.
        self._coords = np.arange(self.image_size, dtype=np.float32) + 0.5

    @property
    def class_names(self) -> Tuple[str, ...]:
        """Names like ``'red_ellipse'`` of the ``num_classes`` classes."""
        return tuple(
            '{}_{}'.format(*self.class_attributes(label))
            for label in range(self.num_classes))

    @staticmethod
    def class_attributes(label: int) -> Tuple[str, str]:
        """Return the ``(colour family, shape type)`` of a class."""
        colour_name, _ = COLOUR_FAMILIES[label % len(COLOUR_FAMILIES)]
        return colour_name, SHAPE_TYPES[label % len(SHAPE_TYPES)]

    def label(self, index: int) -> int:
        """Return the class of image ``index`` without rendering it."""
        return self._draw_label(self._rng(index))

    def generate(self, index: int) -> Tuple[np.ndarray, int]:
        """``(uint8 RGB image (S, S, 3), label)`` of image ``index``."""
        rng = self._rng(index)
        label = self._draw_label(rng)
        size = self.image_size
        canvas = self.background(rng)
        for _ in range(rng.integers(*NUM_CLUTTER)):
            self.paint_random_shape(rng, canvas, CLUTTER_HALF_SIZE)
        self._paint_foreground(rng, canvas, label)
        for _ in range(rng.integers(*NUM_OCCLUDERS)):
            self.paint_random_shape(rng, canvas, OCCLUDER_HALF_SIZE)
        # Drawn last: the number of noise samples depends on the image size.
        canvas += uniform_noise(rng, (size, size, 3), PIXEL_NOISE_STD)
        image = np.clip(canvas * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
        return image, label

    def _rng(self, index: int) -> np.random.Generator:
        if index < 0:
            raise ValueError(f'index must be >= 0, but got {index}.')
        return np.random.default_rng([self.seed, int(index)])

    def _draw_label(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.num_classes))

    def background(self, rng: np.random.Generator) -> np.ndarray:
        """A float32 HxWx3 canvas filled with a muted texture."""
        kind = BACKGROUND_TEXTURES[rng.integers(len(BACKGROUND_TEXTURES))]
        colours = (muted_colour(rng), muted_colour(rng))
        half = self.image_size / 2.0
        field = texture_field(rng, kind, self._coords[:, None],
                              self._coords[None, :], (half, half), half,
                              self.image_size)
        return blend(colours, field)

    def paint_random_shape(self, rng: np.random.Generator,
                           canvas: np.ndarray,
                           half_size_range: Tuple[float, float]) -> np.ndarray:
        """Paint a muted shape of random type anywhere; returns its (H, W)
        mask."""
        shape = SHAPE_TYPES[rng.integers(len(SHAPE_TYPES))]
        centre = rng.uniform(0.0, 1.0, size=2)
        half_size = rng.uniform(*half_size_range)
        colours = (muted_colour(rng), muted_colour(rng))
        return self.paint_shape(rng, canvas, shape, centre, half_size,
                                colours)

    def _paint_foreground(self, rng: np.random.Generator, canvas: np.ndarray,
                          label: int) -> None:
        """Paint the large, vivid shape that defines the class."""
        _, hue = COLOUR_FAMILIES[label % len(COLOUR_FAMILIES)]
        shape = SHAPE_TYPES[label % len(SHAPE_TYPES)]
        centre = rng.uniform(*FOREGROUND_CENTRE, size=2)
        half_size = rng.uniform(*FOREGROUND_HALF_SIZE)
        colours = (vivid_colour(rng, hue), vivid_colour(rng, hue))
        self.paint_shape(rng, canvas, shape, centre, half_size, colours)

    def paint_shape(self, rng: np.random.Generator, canvas: np.ndarray,
                    shape: str, centre: np.ndarray, half_size: float,
                    colours: Tuple[np.ndarray, np.ndarray],
                    kind: Optional[str] = None) -> np.ndarray:
        """Paint a rotated, stretched, textured shape in place (``centre``,
        ``half_size`` in fractions of the image; texture ``kind``, drawn
        from ``SHAPE_TEXTURES`` if None); returns its (H, W) mask."""
        size = self.image_size
        aspect = math.sqrt(rng.uniform(0.6, 1.6))
        half_axes = (half_size * size * aspect, half_size * size / aspect)
        angle = rng.uniform(0.0, 2.0 * math.pi)
        if kind is None:
            kind = SHAPE_TEXTURES[rng.integers(len(SHAPE_TEXTURES))]
        cx, cy = centre * size
        # Every shape lies inside the rotated rectangle of these half axes.
        # The centre is inside the image, so the box is never empty.
        radius = math.hypot(*half_axes)
        x0, x1 = clip_span(cx - radius, cx + radius, size)
        y0, y1 = clip_span(cy - radius, cy + radius, size)
        ys = self._coords[y0:y1, None]
        xs = self._coords[None, x0:x1]
        mask = shape_mask(shape, xs - cx, ys - cy, angle, half_axes)
        field = texture_field(rng, kind, ys, xs, (cx, cy), radius, size)
        region = canvas[y0:y1, x0:x1]
        region[mask] = blend(colours, field[mask])
        painted = np.zeros((size, size), dtype=bool)
        painted[y0:y1, x0:x1] = mask
        return painted


def check_generator_args(image_size: int, num_classes: int,
                         seed: int) -> None:
    """Raise a ValueError naming the fix if a generator argument is bad."""
    if not is_int(image_size) or image_size < 8:
        raise ValueError(f'image_size must be an int >= 8, but got '
                         f'{image_size!r}. Use e.g. image_size=224.')
    max_classes = ShapesGenerator.MAX_NUM_CLASSES
    if not is_int(num_classes) or not 1 <= num_classes <= max_classes:
        raise ValueError(f'num_classes must be an int in [1, {max_classes}]'
                         f', but got {num_classes!r}.')
    if not is_int(seed) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, but got '
                         f'{seed!r}. Use e.g. seed=0.')


def is_int(value) -> bool:
    """Whether ``value`` is an integer (Python or numpy), excluding bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def clip_span(start: float, stop: float, size: int) -> Tuple[int, int]:
    """Clip a continuous span to integer pixel bounds in ``[0, size]``."""
    return (min(max(int(math.floor(start)), 0), size),
            min(max(int(math.ceil(stop)), 0), size))


def muted_colour(rng: np.random.Generator) -> np.ndarray:
    """Draw a low-saturation RGB colour of any hue, for clutter."""
    return hsv_colour(
        rng.uniform(0.0, 1.0), rng.uniform(*MUTED_SATURATION),
        rng.uniform(*MUTED_VALUE))


def vivid_colour(rng: np.random.Generator, hue_degrees: float) -> np.ndarray:
    """Draw a saturated RGB colour close to ``hue_degrees``."""
    hue = hue_degrees + rng.uniform(-FOREGROUND_HUE_JITTER,
                                    FOREGROUND_HUE_JITTER)
    return hsv_colour((hue / 360.0) % 1.0,
                      rng.uniform(*FOREGROUND_SATURATION),
                      rng.uniform(*FOREGROUND_VALUE))


def hsv_colour(hue: float, saturation: float, value: float) -> np.ndarray:
    """Convert an HSV colour (all in [0, 1]) to a float32 RGB array."""
    return np.array(
        colorsys.hsv_to_rgb(hue, saturation, value), dtype=np.float32)


def uniform_noise(rng: np.random.Generator, shape: Tuple[int, ...],
                  std: float) -> np.ndarray:
    """Zero-mean uniform float32 noise of standard deviation ``std``
    (cheaper than Gaussian; U[-0.5, 0.5) has std ``1 / sqrt(12)``)."""
    noise = rng.random(shape, dtype=np.float32) - np.float32(0.5)
    noise *= np.float32(std * math.sqrt(12.0))
    return noise


def blend(colours: Tuple[np.ndarray, np.ndarray],
          field: np.ndarray) -> np.ndarray:
    """Mix two RGB colours with a field in [0, 1] (shape S -> S + (3,))."""
    first, second = colours
    mixed = field[..., None] * (second - first)
    mixed += first
    return mixed


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, angle: float,
               half_axes: Tuple[float, float]) -> np.ndarray:
    """(H, W) mask of ``shape`` centred at the origin, from pixel offsets
    ``dx`` (1, W) and ``dy`` (H, 1), rotated by ``angle`` (radians)."""
    cos, sin = math.cos(angle), math.sin(angle)
    # Rotated coordinates, normalised so the shape fits in [-1, 1]^2.
    u = (dx * cos + dy * sin) / half_axes[0]
    v = (dy * cos - dx * sin) / half_axes[1]
    if shape == 'ellipse':
        return u * u + v * v <= 1.0
    if shape == 'rectangle':
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    if shape == 'triangle':
        return triangle_mask(u, v)
    if shape == 'star':
        return star_mask(u, v)
    if shape == 'cross':
        u, v = np.abs(u), np.abs(v)
        return (((u <= 1.0) & (v <= CROSS_ARM_WIDTH)) |
                ((u <= CROSS_ARM_WIDTH) & (v <= 1.0)))
    raise ValueError(f'Unknown shape {shape!r}, expected one of '
                     f'{SHAPE_TYPES}.')


def triangle_mask(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Equilateral triangle inscribed in the unit circle (normalised coords).

    A point is inside a counter-clockwise convex polygon when it lies on the
    left of every edge.
    """
    angles = np.deg2rad([90.0, 210.0, 330.0])
    vertices = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    inside = None
    for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, -1, axis=0)):
        left = (bx - ax) * (v - ay) - (by - ay) * (u - ax) >= 0.0
        inside = left if inside is None else inside & left
    return inside


def star_mask(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Star with :data:`STAR_POINTS` points in normalised coordinates.

    The star has tips on the unit circle (the first one on the ``u`` axis)
    and valleys at :data:`STAR_INNER_RADIUS`. Folding the polar angle into
    ``[0, pi / STAR_POINTS]`` maps every point into the first half-sector,
    where the star is the side of the tip-valley edge that holds the origin.
    """
    half_sector = math.pi / STAR_POINTS
    angle = np.arctan2(v, u) % (2.0 * half_sector)
    folded = np.minimum(angle, 2.0 * half_sector - angle)
    radius = np.sqrt(u * u + v * v)
    x, y = radius * np.cos(folded), radius * np.sin(folded)
    valley_x = STAR_INNER_RADIUS * math.cos(half_sector)
    valley_y = STAR_INNER_RADIUS * math.sin(half_sector)
    # Cross product of (valley - tip) and (point - tip), tip = (1, 0); it is
    # positive on the origin's side.
    return (valley_x - 1.0) * y - valley_y * (x - 1.0) >= 0.0


def texture_field(rng: np.random.Generator, kind: str, ys: np.ndarray,
                  xs: np.ndarray, centre: Tuple[float, float], radius: float,
                  image_size: int) -> np.ndarray:
    """Scalar texture field in [0, 1] over a pixel grid.

    Args:
        rng (np.random.Generator): Source of the texture parameters.
        kind (str): One of ``solid``, ``gradient``, ``stripes``,
            ``checkerboard`` and ``noise``.
        ys (np.ndarray): Pixel y coordinates, shape (H, 1).
        xs (np.ndarray): Pixel x coordinates, shape (1, W).
        centre (tuple[float, float]): ``(x, y)`` centre of the textured
            object, in pixels.
        radius (float): Radius of the textured object, in pixels.
        image_size (int): Image size; periods scale with it.

    Returns:
        np.ndarray: float32 array of shape (H, W).
    """
    shape = (ys.shape[0], xs.shape[1])
    if kind == 'solid':
        return np.zeros(shape, dtype=np.float32)
    if kind == 'noise':
        return smooth_noise(rng, shape)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    along = (xs - centre[0]) * cos + (ys - centre[1]) * sin
    if kind == 'gradient':
        return np.clip(0.5 + along / (2.0 * radius), 0.0, 1.0)
    if kind == 'stripes':
        period = rng.uniform(*STRIPE_PERIOD) * image_size
        return (np.floor(along / period) % 2.0).astype(np.float32)
    if kind == 'checkerboard':
        cell = rng.uniform(*CHECKER_CELL) * image_size
        across = (ys - centre[1]) * cos - (xs - centre[0]) * sin
        cells = np.floor(along / cell) + np.floor(across / cell)
        return (cells % 2.0).astype(np.float32)
    raise ValueError(f'Unknown texture {kind!r}.')


def smooth_noise(rng: np.random.Generator, shape: Tuple[int,
                                                        int]) -> np.ndarray:
    """A coarse random grid (independent of ``shape``), bilinearly
    upsampled to ``shape``."""
    cells = int(rng.integers(3, 9))
    grid = rng.uniform(0.0, 1.0, size=(cells, cells)).astype(np.float32)
    rows = linear_resize_axis(grid, shape[0], axis=0)
    return linear_resize_axis(rows, shape[1], axis=1)


def linear_resize_axis(array: np.ndarray, length: int,
                       axis: int) -> np.ndarray:
    """Linearly resample a 2D array to ``length`` samples along ``axis``
    (end samples kept)."""
    count = array.shape[axis]
    positions = np.linspace(0.0, count - 1.0, length, dtype=np.float32)
    low = np.minimum(positions.astype(np.int64), count - 2)
    weight = positions - low
    if axis == 0:
        return (array[low] * (1.0 - weight[:, None]) +
                array[low + 1] * weight[:, None])
    return array[:, low] * (1.0 - weight) + array[:, low + 1] * weight


# Pipeline steps that read ``img_path``; procedural images need none.
LOAD_IMAGE_TRANSFORMS = ('LoadImageFromFile', 'SafeLoadImageFromFile')


def is_load_image_transform(transform: Union[dict, Callable]) -> bool:
    """Whether a pipeline entry (config dict, any scope, or built
    transform) loads the image from a file."""
    if isinstance(transform, dict):
        transform_type = transform.get('type')
        if isinstance(transform_type, str):
            return transform_type.split('.')[-1] in LOAD_IMAGE_TRANSFORMS
        return (isinstance(transform_type, type)
                and issubclass(transform_type, LoadImageFromFile))
    return isinstance(transform, LoadImageFromFile)


def drop_load_image_transforms(
        pipeline: Sequence[Union[dict, Callable]]) -> List:
    """Return the pipeline without its image-loading transforms."""
    return [t for t in pipeline if not is_load_image_transform(t)]


def is_empty_prefix(data_prefix: Union[str, dict, None]) -> bool:
    """Whether ``data_prefix`` (a path or a dict of paths) names nothing."""
    if isinstance(data_prefix, dict):
        return not any(data_prefix.values())
    return not data_prefix


@DATASETS.register_module()
class ProceduralShapesDataset(CustomDataset):
    """Procedural shape images by default, or an image folder.

    **Procedural mode** (``data_root``, ``data_prefix`` and ``ann_file``
    all empty): ``num_images`` images of :class:`ShapesGenerator`, rendered
    when fetched, given to the pipeline as ``img`` (uint8 **BGR**, like
    ``cv2``), ``img_shape``, ``ori_shape``, ``gt_label``; image-loading
    steps are dropped from the pipeline, so ImageNet configs work unchanged.

    **Folder mode** (any of them given): exactly mmpretrain's
    ``CustomDataset``; the procedural arguments are ignored, and a missing
    or empty folder / annotation file is an error naming the layout.

    Args:
        data_root, data_prefix, ann_file, with_label, extensions, metainfo,
            lazy_init: as ``CustomDataset``; default ``classes`` in
            procedural mode are names such as ``'red_ellipse'``.
        num_images, image_size, num_classes, seed: procedural mode, see
            :class:`ShapesGenerator`.
        **kwargs: other :class:`BaseDataset` arguments (``pipeline`` ...).
    """

    def __init__(self,
                 data_root: Optional[str] = '',
                 data_prefix: Union[str, dict, None] = '',
                 ann_file: Optional[str] = '',
                 with_label: bool = True,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 metainfo: Optional[dict] = None,
                 lazy_init: bool = False,
                 num_images: int = 1000,
                 image_size: int = 224,
                 num_classes: int = 10,
                 seed: int = 0,
                 **kwargs):
        data_root = os.fspath(data_root) if data_root else ''
        data_prefix = data_prefix or ''
        if not isinstance(data_prefix, dict):
            data_prefix = os.fspath(data_prefix)
        ann_file = os.fspath(ann_file) if ann_file else ''
        self.procedural = (not data_root and is_empty_prefix(data_prefix)
                           and not ann_file)

        if not self.procedural:
            self.generator = None
            super().__init__(
                data_root=data_root,
                data_prefix=data_prefix,
                ann_file=ann_file,
                with_label=with_label,
                extensions=extensions,
                metainfo=metainfo,
                lazy_init=lazy_init,
                **kwargs)
            return

        if not is_int(num_images) or num_images < 1:
            raise ValueError(f'num_images must be an int >= 1, but got '
                             f'{num_images!r}. Use e.g. num_images=1000.')
        self.num_images = int(num_images)
        self.generator = ShapesGenerator(
            image_size=image_size, num_classes=num_classes, seed=seed)
        metainfo = self._procedural_metainfo(metainfo,
                                             kwargs.pop('classes', None))
        kwargs['pipeline'] = drop_load_image_transforms(
            kwargs.get('pipeline', ()))
        self.extensions = tuple(set(i.lower() for i in extensions))
        self.with_label = with_label
        # ``CustomDataset.__init__`` requires a folder or an annotation file,
        # so initialise its parent directly, with the same lazy loading.
        BaseDataset.__init__(
            self, ann_file='', metainfo=metainfo, lazy_init=True, **kwargs)
        if not lazy_init:
            self.full_init()

    def _procedural_metainfo(
            self, metainfo: Optional[dict],
            classes: Union[str, Sequence[str], None]) -> dict:
        """Add the generator's class names unless ``metainfo['classes']`` or
        the old-style ``classes`` gives some."""
        metainfo = dict(self._compat_classes(metainfo, classes))
        classes = metainfo.setdefault('classes', self.generator.class_names)
        if len(classes) != self.generator.num_classes:
            raise ValueError(
                f'metainfo["classes"] has {len(classes)} names but '
                f'num_classes is {self.generator.num_classes}. Give one name '
                f'per class or leave metainfo["classes"] unset.')
        return metainfo

    def load_data_list(self) -> List[dict]:
        """``dict(idx=i, gt_label=label)`` per image (nothing rendered), or
        the folder's list, refusing a missing or empty one."""
        if not self.procedural:
            self._check_folder_exists()
            try:
                data_list = super().load_data_list()
            except RuntimeError as exc:  # mmpretrain: 'Found 0 files in ...'
                if 'Found 0 files' not in str(exc):
                    raise
                data_list = []
            if not data_list:
                raise ValueError(self._empty_message())
            return data_list
        return [
            dict(idx=idx, gt_label=self.generator.label(idx))
            for idx in range(self.num_images)
        ]

    def _check_folder_exists(self) -> None:
        """Raise FileNotFoundError naming the missing path and the fix."""
        if self.ann_file:
            missing = self.ann_file
            what = 'Annotation file'
        else:
            missing = self.img_prefix
            what = 'Image folder'
        backend = get_file_backend(missing, enable_singleton=True)
        if not backend.exists(missing):
            raise FileNotFoundError(
                f'{what} {missing!r} of {type(self).__name__} does not '
                f'exist. Point `data_root` at an ImageNet-style folder '
                f'(data_root/<class>/<image>.JPEG), or leave `data_root`, '
                f'`data_prefix` and `ann_file` empty to use the built-in '
                f'procedural images.')

    def _empty_message(self) -> str:
        """What an empty folder or annotation file should have held."""
        name = type(self).__name__
        if self.ann_file:
            return (f'Annotation file {self.ann_file!r} of {name} lists no '
                    'image. Write one line per image: its path relative to '
                    f'{self.img_prefix!r}' +
                    (', a space and its class index' if self.with_label
                     else '') + '.')
        layout = ('<class>/<image>' if self.with_label else
                  '<image> or <class>/<image>')
        return (f'Image folder {self.img_prefix!r} of {name} holds no image '
                f'(extensions {", ".join(sorted(self.extensions))}). Expected '
                f'the ImageNet layout {self.img_prefix}/{layout}, e.g. '
                f'{self.img_prefix}/n01440764/x.JPEG; point data_root / '
                'data_prefix at that folder.')

    def get_data_info(self, idx: int) -> dict:
        """The data info of sample ``idx``, with the rendered image in
        procedural mode."""
        data_info = super().get_data_info(idx)
        if self.procedural:
            data_info.update(self.render(data_info['idx']))
        return data_info

    def render(self, image_idx: int) -> dict:
        """``img`` (BGR uint8), ``img_shape``, ``ori_shape`` of generator
        image ``image_idx`` (the data info's ``idx``)."""
        image_rgb, _ = self.generator.generate(image_idx)
        image_bgr = np.ascontiguousarray(image_rgb[..., ::-1])
        return dict(
            img=image_bgr,
            img_shape=image_bgr.shape[:2],
            ori_shape=image_bgr.shape[:2])

    def get_gt_labels(self) -> np.ndarray:
        """Get all ground-truth labels without rendering any image."""
        return np.array([
            self._get_annotation(i)['gt_label'] for i in range(len(self))
        ])

    def get_cat_ids(self, idx: int) -> List[int]:
        """Get the category of sample ``idx`` without rendering its image."""
        return [int(self._get_annotation(idx)['gt_label'])]

    def _get_annotation(self, idx: int) -> dict:
        """Data info of sample ``idx`` without the rendered image."""
        return super().get_data_info(idx)

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        if not self.procedural:
            return super().extra_repr()
        generator = self.generator
        return [
            'Procedural images: \tShapesGenerator('
            f'image_size={generator.image_size}, '
            f'num_classes={generator.num_classes}, seed={generator.seed})'
        ]
