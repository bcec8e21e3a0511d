# Copyright (c) OpenMMLab. All rights reserved.
"""Tiny ImageNet-C / -A / -R / -Sketch in the official layouts, made from the
val images of the tiny ImageNet (:func:`~.tiny_downstream.make_tiny_imagenet`).

Tiny class ``k`` is ImageNet class ``k`` (the tiny ImageNet's labels), so the
class folders are the first wnids of ``wnids/imagenet1k.txt``. What each set
holds:

- **-C**: the first ``num_images`` tiny val images under the 15 corruptions
  x 5 severities of the ``imagecorruptions`` package (``imagecorruptions-
  imaug``, the maintained fork of Hendrycks & Dietterich's code; seeded, so
  the files are reproducible).
- **-R**: renditions (pencil sketch, cartoon, painting, in turn) of tiny val
  images whose class is one of ImageNet-R's 200 (classes 1, 2, 4, 6, 8, 9).
- **-Sketch**: pencil sketches (grey, dark strokes on white) of tiny val
  images of all classes.
- **-A**: the tiny val images of the classes among ImageNet-A's 200 (only
  class 6), unchanged: there is no reference classifier to filter
  adversarially with, so tiny -A checks the 200-class wiring, not
  robustness.

:func:`make_tiny_robustness_data` writes the four under one root, each
atomically and only when its parameters changed (as
:func:`~.tiny_downstream.make_tiny_downstream_data`).
"""
import os
import os.path as osp
import zlib
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .imagenet_variants import (IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES,
                                read_wnids)
from .procedural import ShapesGenerator
from .tiny_downstream import (VAL_INDEX_OFFSET, check_empty_root, write_jpeg,
                              write_if_changed)

#: val images scanned at most when collecting the images of a class subset
MAX_SCAN = 10000
RENDITIONS = ('sketch', 'cartoon', 'painting')


def pencil_sketch(image: np.ndarray) -> np.ndarray:
    """Grey pencil sketch: the grey image "colour-dodged" by its blurred
    negative (dark strokes at edges on white, darkened by a power of 4),
    as RGB ``uint8``."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    blurred = cv2.GaussianBlur(255 - grey, (0, 0), sigmaX=2)
    sketch = cv2.divide(grey, 255 - blurred, scale=256) / 255.0
    sketch = np.round(255 * sketch**4).astype(np.uint8)
    return cv2.cvtColor(sketch, cv2.COLOR_GRAY2RGB)


def cartoon(image: np.ndarray) -> np.ndarray:
    """Flat colours (smoothed, 4 levels per channel) with dark outlines."""
    smooth = cv2.bilateralFilter(image, 5, 75, 75)
    flat = (smooth // 64) * 64 + 32
    grey = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 3)
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C,
                                  cv2.THRESH_BINARY, 7, 4)
    return np.where(edges[..., None] > 0, flat, 0).astype(np.uint8)


def painting(image: np.ndarray) -> np.ndarray:
    """OpenCV's edge-preserving stylisation (a watercolour look)."""
    return cv2.stylization(image, sigma_s=30, sigma_r=0.45)


RENDER = dict(sketch=pencil_sketch, cartoon=cartoon, painting=painting)


def tiny_val_images(image_size: int, num_classes: int, seed: int,
                    labels: Sequence[int], per_class: int
                    ) -> List[Tuple[int, np.ndarray, int]]:
    """``(val index, image, label)`` of the first ``per_class`` tiny val
    images of each class in ``labels``, in val order."""
    generator = ShapesGenerator(
        image_size=image_size, num_classes=num_classes, seed=seed)
    wanted, found = set(labels), {label: 0 for label in labels}
    images = []
    for index in range(MAX_SCAN):
        if all(n >= per_class for n in found.values()):
            break
        label = generator.label(VAL_INDEX_OFFSET + index)
        if label in wanted and found[label] < per_class:
            image, _ = generator.generate(VAL_INDEX_OFFSET + index)
            images.append((index, image, label))
            found[label] += 1
    return images


def _write(root: str, rel_dir: str, name: str, image: np.ndarray) -> None:
    os.makedirs(osp.join(root, rel_dir), exist_ok=True)
    write_jpeg(osp.join(root, rel_dir, name), image)


def make_tiny_imagenet_c(root: str,
                         num_images: int = 20,
                         image_size: int = 64,
                         num_classes: int = 10,
                         seed: int = 0) -> dict:
    """Write ``root/<corruption>/<severity>/<wnid>/ILSVRC2012_val_*.JPEG``:
    the first ``num_images`` tiny val images (those of
    ``make_tiny_imagenet``) under every corruption and severity."""
    try:
        from imagecorruptions import corrupt
    except ImportError as exc:
        raise ImportError(
            'The tiny ImageNet-C needs the imagecorruptions package: pip '
            'install -r requirements/optional.txt (imagecorruptions-imaug).'
        ) from exc
    check_empty_root(root)
    wnids = read_wnids('imagenet1k')
    generator = ShapesGenerator(
        image_size=image_size, num_classes=num_classes, seed=seed)
    labels = []
    for index in range(num_images):
        image, label = generator.generate(VAL_INDEX_OFFSET + index)
        labels.append(label)
        name = f'ILSVRC2012_val_{index + 1:08d}.JPEG'
        for c_id, corruption in enumerate(IMAGENET_C_CORRUPTIONS):
            for severity in IMAGENET_C_SEVERITIES:
                # The package draws from NumPy's global generator, and from
                # ``seed`` for impulse noise and glass blur.
                sub_seed = zlib.crc32(
                    f'{seed}/{index}/{c_id}/{severity}'.encode())
                np.random.seed(sub_seed)
                kwargs = dict(seed=sub_seed) if corruption in (
                    'impulse_noise', 'glass_blur') else {}
                out = corrupt(
                    image,
                    corruption_name=corruption,
                    severity=severity,
                    **kwargs)
                _write(root, osp.join(corruption, str(severity),
                                      wnids[label]), name, out)
    return dict(num_images=num_images, labels=labels)


def make_tiny_wnid_folders(root: str,
                           variant: str,
                           per_class: int = 4,
                           image_size: int = 64,
                           num_classes: int = 10,
                           seed: int = 0) -> dict:
    """Write ``root/<wnid>/*`` for ``variant`` ``'a'``, ``'r'`` or
    ``'sketch'`` (see the module docstring)."""
    check_empty_root(root)
    wnids = read_wnids('imagenet1k')
    if variant == 'sketch':
        labels = list(range(num_classes))
    else:
        subset = set(read_wnids(f'imagenet_{variant}'))
        labels = [k for k in range(num_classes) if wnids[k] in subset]
    ext = '.JPEG' if variant == 'sketch' else '.jpg'
    counts: Dict[int, int] = {}
    for i, (index, image, label) in enumerate(
            tiny_val_images(image_size, num_classes, seed, labels,
                            per_class)):
        if variant == 'r':
            style = RENDITIONS[i % len(RENDITIONS)]
            image, name = RENDER[style](image), f'{style}_{index:08d}{ext}'
        elif variant == 'sketch':
            image, name = pencil_sketch(image), f'sketch_{index:08d}{ext}'
        else:
            name = f'{index:08d}{ext}'
        _write(root, wnids[label], name, image)
        counts[label] = counts.get(label, 0) + 1
    return dict(class_counts={str(k): v for k, v in sorted(counts.items())})


def make_tiny_robustness_data(root: str,
                              num_images: int = 20,
                              per_class: int = 4,
                              image_size: int = 64,
                              num_classes: int = 10,
                              seed: int = 0) -> Dict[str, dict]:
    """Write the four tiny sets under ``root``::

        root/imagenet-c/       make_tiny_imagenet_c (num_images)
        root/imagenet-a/       make_tiny_wnid_folders(variant='a')
        root/imagenet-r/       make_tiny_wnid_folders(variant='r')
        root/imagenet-sketch/  make_tiny_wnid_folders(variant='sketch')

    ``per_class`` images per class for -A / -R / -Sketch. Defaults match
    the tiny ImageNet of ``make_tiny_data.py`` (64 px, 10 classes, seed 0).

    Returns:
        dict: Per set, the writer's result plus ``root`` and ``skipped``.
    """
    common = dict(image_size=image_size, num_classes=num_classes, seed=seed)
    results = dict(
        c=write_if_changed(
            osp.join(root, 'imagenet-c'), make_tiny_imagenet_c,
            dict(num_images=num_images, **common)))
    for variant in ('a', 'r', 'sketch'):
        results[variant] = write_if_changed(
            osp.join(root, f'imagenet-{variant}'), make_tiny_wnid_folders,
            dict(variant=variant, per_class=per_class, **common))
    return results


__all__ = [
    'make_tiny_imagenet_c', 'make_tiny_robustness_data',
    'make_tiny_wnid_folders', 'pencil_sketch'
]
