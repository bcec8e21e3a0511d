# Copyright (c) OpenMMLab. All rights reserved.
"""Tiny downstream datasets written to disk in the real datasets' layouts.

The images are drawn with the helpers of :mod:`mmsdae.datasets.procedural`
(textured backgrounds, muted clutter, vivid textured shapes, small occluders,
light pixel noise), and the annotations are exact by construction. As the
files follow the official layouts, the *real* dataset classes and metrics
read them, and a downstream config switches to the real data by changing
``data_root`` only:

- :func:`make_tiny_coco`: COCO 2017 (``data/coco``), read by mmdet's
  ``CocoDataset``;
- :func:`make_tiny_ade20k`: ADEChallengeData2016
  (``data/ade/ADEChallengeData2016``), read by mmseg's ``ADE20KDataset``;
- :func:`make_tiny_imagenet`: ImageNet-1k with ``meta/*.txt``
  (``data/imagenet``), read by mmpretrain's ``ImageNet``.

:func:`make_tiny_downstream_data` writes all three under one root (``coco``,
``ade/ADEChallengeData2016``, ``imagenet``, as in the OpenMMLab ``data/``
folders), atomically and only when its parameters changed. Every file is a
pure function of the writer's arguments (same arguments, same bytes).

The shape type is the class (:data:`COCO_SHAPE_CATEGORIES`,
:data:`ADE20K_SHAPE_CLASSES`; the colour is random). ADE20K backgrounds are
a tilted horizon between two *stuff* classes (:data:`ADE20K_STUFF`);
clutter and occluders are ``0`` ("other", ignored with
``reduce_zero_label=True``).
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .procedural import (CLUTTER_HALF_SIZE, COLOUR_FAMILIES, NUM_CLUTTER,
                         NUM_OCCLUDERS, OCCLUDER_HALF_SIZE, PIXEL_NOISE_STD,
                         SHAPE_TYPES, ShapesGenerator, check_generator_args,
                         is_int, uniform_noise, vivid_colour)

# Bump when the output of any writer changes, so stamps of older versions
# regenerate.
FORMAT_VERSION = 1
STAMP_NAME = '.tiny_data_stamp.json'

# ----------------------------------------------------------------------------
# COCO 2017: the 80 categories of instances_{train,val}2017.json, with their
# real ids (1..90 with gaps) and supercategories. Names are in id order, the
# order of ``mmdet.datasets.CocoDataset.METAINFO['classes']``.
# ----------------------------------------------------------------------------
COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
    'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop',
    'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
    'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')
COCO_SUPERCATEGORY_IDS = (
    ('person', (1, )),
    ('vehicle', tuple(range(2, 10))),
    ('outdoor', (10, 11, 13, 14, 15)),
    ('animal', tuple(range(16, 26))),
    ('accessory', (27, 28, 31, 32, 33)),
    ('sports', tuple(range(34, 44))),
    ('kitchen', (44, ) + tuple(range(46, 52))),
    ('food', tuple(range(52, 62))),
    ('furniture', (62, 63, 64, 65, 67, 70)),
    ('electronic', tuple(range(72, 78))),
    ('appliance', tuple(range(78, 83))),
    ('indoor', tuple(range(84, 91))),
)
COCO_SHAPE_CATEGORIES = {
    'ellipse': 'sports ball',
    'rectangle': 'book',
    'triangle': 'kite',
    'star': 'frisbee',
    'cross': 'airplane',
}

# ----------------------------------------------------------------------------
# ADE20K (SceneParsing / ADEChallengeData2016): label value k in the png is
# class k - 1 of ``mmseg.datasets.ADE20KDataset.METAINFO['classes']``; 0 is
# "other".
# ----------------------------------------------------------------------------
ADE20K_LABELS = {
    'wall': 1,
    'sky': 3,
    'floor': 4,
    'grass': 10,
    'box': 42,
    'flower': 67,
    'airplane': 91,
    'tent': 115,
    'ball': 120,
}
ADE20K_OTHER = 0
ADE20K_SHAPE_CLASSES = {
    'ellipse': 'ball',
    'rectangle': 'box',
    'triangle': 'tent',
    'star': 'flower',
    'cross': 'airplane',
}
# (upper, lower) stuff classes of indoor and outdoor scenes.
ADE20K_STUFF = (('wall', 'floor'), ('sky', 'grass'))

# Scene geometry, in fractions of the image size (objects of ~24-80 px at
# 128 px, in the range of Mask R-CNN's anchors).
OBJECT_HALF_SIZE = (0.10, 0.28)
OBJECT_CENTRE = (0.2, 0.8)
COCO_NUM_OBJECTS = (1, 5)  # high is exclusive
ADE20K_NUM_OBJECTS = (1, 4)
HORIZON = (0.35, 0.65)
HORIZON_MAX_SLOPE = 0.3
# COCO instances whose visible area is below this fraction of the image are
# not annotated (like tiny, hardly visible objects).
MIN_VISIBLE_AREA = 0.01
# COCO scenes are redrawn (with the next attempt's seed) until every kept
# instance is a union of hole-free regions, which COCO polygons describe
# exactly, and at least one instance is kept.
MAX_SCENE_ATTEMPTS = 100
MIN_DENSE_IMAGE_SIZE = 32

# Independent random streams per dataset and split.
DATASET_CODES = {'coco': 1, 'ade20k': 2}
SPLIT_CODES = {'train': 0, 'val': 1}
# ImageNet val image i is generator image VAL_INDEX_OFFSET + i, so train and
# val never share an image.
VAL_INDEX_OFFSET = 10**6
JPEG_QUALITY = 95


def coco_categories() -> List[dict]:
    """The 80 COCO 2017 categories, as in ``instances_val2017.json``."""
    ids = [i for _, group in COCO_SUPERCATEGORY_IDS for i in group]
    supers = [name for name, group in COCO_SUPERCATEGORY_IDS for _ in group]
    return [
        dict(supercategory=sup, id=cat_id, name=name)
        for cat_id, name, sup in zip(ids, COCO_CLASSES, supers)
    ]


# ----------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------
def make_tiny_coco(root: str,
                   num_train: int = 8,
                   num_val: int = 4,
                   image_size: int = 128,
                   seed: int = 0) -> dict:
    """Write a tiny detection / instance segmentation set in COCO layout.

    Layout (COCO 2017, as in ``data/coco``)::

        root/train2017/000000000001.jpg ...
        root/val2017/000001000001.jpg ...
        root/annotations/instances_train2017.json
        root/annotations/instances_val2017.json

    The json files have the 80 standard ``categories`` (mmdet's default
    metainfo reads them) and 1-4 shapes per image. Masks are the *visible*
    pixels; the polygons trace the pixel borders, so pycocotools rasterises
    them back exactly, ``bbox`` is tight and ``area`` is the pixel count.
    Val image ids start at ``10**6 + 1``.

    Returns:
        dict: ``root``, ``ann_file`` and ``img_prefix`` (per split, relative
        to ``root``), ``num_images`` and ``num_instances`` (per split).
    """
    check_split_sizes(num_train, num_val)
    check_dense_image_size(image_size)
    check_generator_args(image_size=image_size, num_classes=1, seed=seed)
    check_empty_root(root)
    generator = ShapesGenerator(image_size=image_size, seed=seed)
    categories = coco_categories()
    name_to_id = {c['name']: c['id'] for c in categories}
    result = dict(
        root=os.fspath(root),
        ann_file={},
        img_prefix={},
        num_images={},
        num_instances={})
    for split, count in (('train', num_train), ('val', num_val)):
        img_prefix = f'{split}2017/'
        ann_file = f'annotations/instances_{split}2017.json'
        os.makedirs(osp.join(root, img_prefix), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        images, annotations = [], []
        first_id = 1 if split == 'train' else VAL_INDEX_OFFSET + 1
        for index in range(count):
            image_id = first_id + index
            file_name = f'{image_id:012d}.jpg'
            image, instances = render_coco_scene(generator, seed, split,
                                                 index)
            write_jpeg(osp.join(root, img_prefix, file_name), image)
            images.append(
                dict(
                    id=image_id,
                    file_name=file_name,
                    height=image_size,
                    width=image_size))
            for shape, mask, polygons in instances:
                ys, xs = np.nonzero(mask)
                x0, y0 = int(xs.min()), int(ys.min())
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=name_to_id[COCO_SHAPE_CATEGORIES[shape]],
                        segmentation=polygons,
                        area=int(mask.sum()),
                        bbox=[
                            x0, y0,
                            int(xs.max()) - x0 + 1,
                            int(ys.max()) - y0 + 1
                        ],
                        iscrowd=0))
        coco = dict(
            info=dict(
                description='Tiny procedural COCO-format dataset '
                '(mmsdae.datasets.tiny_downstream.make_tiny_coco)',
                version=str(FORMAT_VERSION),
                year=2017),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=categories)
        with open(osp.join(root, ann_file), 'w', encoding='utf-8') as f:
            json.dump(coco, f, separators=(',', ':'))
        result['ann_file'][split] = ann_file
        result['img_prefix'][split] = img_prefix
        result['num_images'][split] = count
        result['num_instances'][split] = len(annotations)
    return result


def make_tiny_ade20k(root: str,
                     num_train: int = 8,
                     num_val: int = 4,
                     image_size: int = 128,
                     seed: int = 0) -> dict:
    """Write a tiny semantic segmentation set in ADEChallengeData2016 layout.

    Layout (as mmseg's ``data/ade/ADEChallengeData2016``)::

        root/images/training/ADE_train_00000001.jpg ...
        root/images/validation/ADE_val_00000001.jpg ...
        root/annotations/training/ADE_train_00000001.png ...
        root/annotations/validation/ADE_val_00000001.png ...

    The pngs are ``uint8`` label maps (:data:`ADE20K_LABELS`; 0 is
    "other"), painted with the masks that drew the image: pixel-exact.

    Returns:
        dict: ``root``, ``img_dir`` and ``ann_dir`` (per split, relative to
        ``root``) and ``num_images`` (per split).
    """
    check_split_sizes(num_train, num_val)
    check_dense_image_size(image_size)
    check_generator_args(image_size=image_size, num_classes=1, seed=seed)
    check_empty_root(root)
    generator = ShapesGenerator(image_size=image_size, seed=seed)
    result = dict(root=os.fspath(root), img_dir={}, ann_dir={}, num_images={})
    for split, count in (('train', num_train), ('val', num_val)):
        folder = 'training' if split == 'train' else 'validation'
        img_dir, ann_dir = f'images/{folder}', f'annotations/{folder}'
        os.makedirs(osp.join(root, img_dir), exist_ok=True)
        os.makedirs(osp.join(root, ann_dir), exist_ok=True)
        for index in range(count):
            stem = f'ADE_{split}_{index + 1:08d}'
            image, label_map = render_ade20k_scene(generator, seed, split,
                                                   index)
            write_jpeg(osp.join(root, img_dir, stem + '.jpg'), image)
            write_png(osp.join(root, ann_dir, stem + '.png'), label_map)
        result['img_dir'][split] = img_dir
        result['ann_dir'][split] = ann_dir
        result['num_images'][split] = count
    return result


def make_tiny_imagenet(root: str,
                       num_train: int = 40,
                       num_val: int = 20,
                       image_size: int = 64,
                       num_classes: int = 10,
                       seed: int = 0) -> dict:
    """Write a tiny classification set in the ImageNet layout of mmpretrain.

    Layout (``data/imagenet`` with annotation files, as in mmpretrain's
    ImageNet preparation docs)::

        root/train/n00000003/n00000003_00000001.JPEG ...
        root/val/ILSVRC2012_val_00000001.JPEG ...
        root/meta/train.txt   # "n00000003/n00000003_00000001.JPEG 3"
        root/meta/val.txt     # "ILSVRC2012_val_00000001.JPEG 7"

    Train image ``i`` is ``ShapesGenerator(...).generate(i)`` (val: image
    ``10**6 + i``) with its class as label; folders ``n{label:08d}`` stand
    in for WordNet ids. The ``meta/*.txt`` files are needed: without them
    mmpretrain's ``ImageNet`` would refuse fewer than its 1000 classes.

    Returns:
        dict: ``root``, ``img_prefix`` and ``ann_file`` (per split, relative
        to ``root``), ``num_images`` and ``labels`` (per split, in file
        order).
    """
    check_split_sizes(num_train, num_val)
    if num_train > VAL_INDEX_OFFSET:
        raise ValueError(f'num_train must be <= {VAL_INDEX_OFFSET} (train '
                         f'and val images would overlap), but got '
                         f'{num_train}.')
    generator = ShapesGenerator(
        image_size=image_size, num_classes=num_classes, seed=seed)
    check_empty_root(root)
    result = dict(
        root=os.fspath(root),
        img_prefix={},
        ann_file={},
        num_images={},
        labels={})
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, count in (('train', num_train), ('val', num_val)):
        lines, labels = [], []
        for index in range(count):
            if split == 'train':
                image, label = generator.generate(index)
                wnid = f'n{label:08d}'
                rel_path = f'{wnid}/{wnid}_{index + 1:08d}.JPEG'
            else:
                image, label = generator.generate(VAL_INDEX_OFFSET + index)
                rel_path = f'ILSVRC2012_val_{index + 1:08d}.JPEG'
            path = osp.join(root, split, rel_path)
            os.makedirs(osp.dirname(path), exist_ok=True)
            write_jpeg(path, image)
            lines.append(f'{rel_path} {label}\n')
            labels.append(label)
        ann_file = f'meta/{split}.txt'
        with open(osp.join(root, ann_file), 'w', encoding='utf-8') as f:
            f.writelines(lines)
        result['img_prefix'][split] = split
        result['ann_file'][split] = ann_file
        result['num_images'][split] = count
        result['labels'][split] = labels
    return result


def make_tiny_downstream_data(root: str,
                              num_train: int = 8,
                              num_val: int = 4,
                              image_size: int = 128,
                              imagenet_num_train: int = 40,
                              imagenet_num_val: int = 20,
                              imagenet_image_size: int = 64,
                              num_classes: int = 10,
                              seed: int = 0) -> Dict[str, dict]:
    """Write the three tiny datasets under ``root``, as OpenMMLab ``data/``.

    Layout::

        root/coco/                        make_tiny_coco
        root/ade/ADEChallengeData2016/    make_tiny_ade20k
        root/imagenet/                    make_tiny_imagenet

    ``num_train``, ``num_val``, ``image_size`` are for COCO and ADE20K, the
    ``imagenet_*`` ones and ``num_classes`` for ImageNet. Each dataset is
    written by :func:`write_if_changed` (atomic, stamped with its
    parameters; a folder without a stamp is never touched).

    Returns:
        dict: For ``'coco'``, ``'ade20k'`` and ``'imagenet'``, the writer's
        result plus ``skipped`` (whether the folder was up to date).
    """
    root = os.fspath(root)
    jobs = (
        ('coco', 'coco', make_tiny_coco,
         dict(
             num_train=num_train,
             num_val=num_val,
             image_size=image_size,
             seed=seed)),
        ('ade20k', osp.join('ade', 'ADEChallengeData2016'), make_tiny_ade20k,
         dict(
             num_train=num_train,
             num_val=num_val,
             image_size=image_size,
             seed=seed)),
        ('imagenet', 'imagenet', make_tiny_imagenet,
         dict(
             num_train=imagenet_num_train,
             num_val=imagenet_num_val,
             image_size=imagenet_image_size,
             num_classes=num_classes,
             seed=seed)),
    )
    return {
        name: write_if_changed(osp.join(root, sub_dir), writer, params)
        for name, sub_dir, writer, params in jobs
    }


def write_if_changed(target: str, writer, params: dict) -> dict:
    """Run ``writer(target, **params)`` atomically unless already done.

    Returns the writer's result with ``root=target`` and ``skipped``.
    """
    stamp_params = dict(
        writer=writer.__name__, format_version=FORMAT_VERSION, **params)
    stamp = read_stamp(target)
    if stamp is not None and stamp.get('params') == stamp_params:
        return dict(stamp['result'], root=target, skipped=True)
    if stamp is None and osp.isdir(target) and os.listdir(target):
        raise FileExistsError(
            f'{target!r} exists and has no {STAMP_NAME} (it was not written '
            f'by mmsdae.datasets.tiny_downstream, it may be a real dataset). '
            f'Choose another output folder, or delete it to regenerate.')
    parent = osp.dirname(osp.abspath(target))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix=f'.{osp.basename(target)}.tmp-', dir=parent)
    try:
        result = writer(tmp, **params)
        result.pop('root', None)
        with open(osp.join(tmp, STAMP_NAME), 'w', encoding='utf-8') as f:
            json.dump(dict(params=stamp_params, result=result), f, indent=1)
        if osp.lexists(target):
            old = tmp + '.old'
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dict(result, root=target, skipped=False)


def read_stamp(folder: str) -> Optional[dict]:
    """The stamp of a tiny dataset folder, or None if it has none."""
    path = osp.join(folder, STAMP_NAME)
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except ValueError:  # unreadable stamp: treat as stale, regenerate
        return {}


# ----------------------------------------------------------------------------
# Scenes
# ----------------------------------------------------------------------------
def render_coco_scene(
        generator: ShapesGenerator, seed: int, split: str, index: int
) -> Tuple[np.ndarray, List[Tuple[str, np.ndarray, List[List[float]]]]]:
    """Render COCO scene ``index`` of ``split``.

    Returns:
        tuple: The ``uint8`` RGB image and, per annotated instance in drawing
        order, ``(shape type, visible boolean mask, polygons)``.
    """
    size = generator.image_size
    min_area = MIN_VISIBLE_AREA * size * size
    for attempt in range(MAX_SCENE_ATTEMPTS):
        rng = np.random.default_rng(
            [seed, DATASET_CODES['coco'], SPLIT_CODES[split], index, attempt])
        canvas = generator.background(rng)
        for _ in range(rng.integers(*NUM_CLUTTER)):
            generator.paint_random_shape(rng, canvas, CLUTTER_HALF_SIZE)
        objects = [
            paint_object(rng, generator, canvas)
            for _ in range(rng.integers(*COCO_NUM_OBJECTS))
        ]
        covered = np.zeros((size, size), dtype=bool)
        for _ in range(rng.integers(*NUM_OCCLUDERS)):
            covered |= generator.paint_random_shape(rng, canvas,
                                                    OCCLUDER_HALF_SIZE)
        instances = []
        for shape, mask in reversed(objects):  # the last one is on top
            visible = mask & ~covered
            covered |= mask
            if visible.sum() < min_area:
                continue
            polygons, has_holes = mask_to_polygons(visible)
            if has_holes:
                break
            instances.append((shape, visible, polygons))
        else:
            if instances:
                return finish_image(rng, canvas), instances[::-1]
    raise RuntimeError(
        f'No valid COCO scene for seed={seed}, split={split!r}, '
        f'index={index} in {MAX_SCENE_ATTEMPTS} attempts (image_size='
        f'{size}). Use a larger image_size.')


def render_ade20k_scene(generator: ShapesGenerator, seed: int, split: str,
                        index: int) -> Tuple[np.ndarray, np.ndarray]:
    """Render ADE20K scene ``index`` of ``split``.

    Returns:
        tuple: The ``uint8`` RGB image and its ``uint8`` label map.
    """
    size = generator.image_size
    rng = np.random.default_rng(
        [seed, DATASET_CODES['ade20k'], SPLIT_CODES[split], index])
    upper, lower = ADE20K_STUFF[rng.integers(len(ADE20K_STUFF))]
    canvas = generator.background(rng)
    lower_canvas = generator.background(rng)
    coords = np.arange(size, dtype=np.float32) + 0.5
    horizon = rng.uniform(*HORIZON) * size
    slope = rng.uniform(-HORIZON_MAX_SLOPE, HORIZON_MAX_SLOPE)
    is_lower = coords[:, None] >= horizon + slope * (coords[None, :] -
                                                     size / 2.0)
    canvas[is_lower] = lower_canvas[is_lower]
    label_map = np.where(is_lower, ADE20K_LABELS[lower],
                         ADE20K_LABELS[upper]).astype(np.uint8)
    for _ in range(rng.integers(*NUM_CLUTTER)):
        mask = generator.paint_random_shape(rng, canvas, CLUTTER_HALF_SIZE)
        label_map[mask] = ADE20K_OTHER
    for _ in range(rng.integers(*ADE20K_NUM_OBJECTS)):
        shape, mask = paint_object(rng, generator, canvas)
        label_map[mask] = ADE20K_LABELS[ADE20K_SHAPE_CLASSES[shape]]
    for _ in range(rng.integers(*NUM_OCCLUDERS)):
        mask = generator.paint_random_shape(rng, canvas, OCCLUDER_HALF_SIZE)
        label_map[mask] = ADE20K_OTHER
    return finish_image(rng, canvas), label_map


def paint_object(rng: np.random.Generator, generator: ShapesGenerator,
                 canvas: np.ndarray) -> Tuple[str, np.ndarray]:
    """Paint a vivid shape of random type and colour family.

    Returns:
        tuple[str, np.ndarray]: The shape type and its boolean mask.
    """
    shape = SHAPE_TYPES[rng.integers(len(SHAPE_TYPES))]
    _, hue = COLOUR_FAMILIES[rng.integers(len(COLOUR_FAMILIES))]
    centre = rng.uniform(*OBJECT_CENTRE, size=2)
    half_size = rng.uniform(*OBJECT_HALF_SIZE)
    colours = (vivid_colour(rng, hue), vivid_colour(rng, hue))
    return shape, generator.paint_shape(rng, canvas, shape, centre,
                                        half_size, colours)


def finish_image(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Add pixel noise (as :class:`ShapesGenerator`) and convert to uint8."""
    canvas += uniform_noise(rng, canvas.shape, PIXEL_NOISE_STD)
    return np.clip(canvas * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def mask_to_polygons(mask: np.ndarray) -> Tuple[List[List[float]], bool]:
    """COCO polygons of a boolean mask, tracing the pixel borders.

    Contours of the mask upsampled 2x run 1/4 pixel inside the border, so
    pycocotools (which fills the pixels whose centre is inside a polygon)
    rasterises them back to exactly ``mask``. COCO polygons cannot have
    holes (several polygons are a union), hence the flag.

    Returns:
        tuple[list[list[float]], bool]: One flat ``[x0, y0, x1, y1, ...]``
        list per connected region, and whether the mask has holes (then the
        polygons cover the holes too).
    """
    upsampled = np.repeat(
        np.repeat(mask.astype(np.uint8), 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(upsampled, cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return [], False
    parents = hierarchy[0][:, 3]
    polygons = [((contour.reshape(-1, 2) + 0.5) / 2.0).ravel().tolist()
                for contour, parent in zip(contours, parents) if parent < 0]
    return polygons, bool((parents >= 0).any())


# ----------------------------------------------------------------------------
# Files and checks
# ----------------------------------------------------------------------------
def write_jpeg(path: str, image_rgb: np.ndarray) -> None:
    """Write an RGB ``uint8`` image as a jpg (deterministic bytes)."""
    if not cv2.imwrite(path, np.ascontiguousarray(image_rgb[..., ::-1]),
                       [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f'Could not write {path!r}.')


def write_png(path: str, label_map: np.ndarray) -> None:
    """Write a single-channel ``uint8`` label map as a png."""
    if not cv2.imwrite(path, label_map):
        raise OSError(f'Could not write {path!r}.')


def check_split_sizes(num_train: int, num_val: int) -> None:
    """Raise a ValueError naming the fix if a split size is bad."""
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not is_int(value) or value < 1:
            raise ValueError(f'{name} must be an int >= 1, but got '
                             f'{value!r}. Use e.g. {name}=4.')


def check_empty_root(root: str) -> None:
    """Refuse to write into a non-empty folder.

    Files of another run would mix in (e.g. ``ADE20KDataset`` reads every png
    of the folder).
    """
    if osp.isdir(root) and os.listdir(root):
        raise FileExistsError(
            f'{os.fspath(root)!r} is not empty. Write into a new folder, or '
            f'use make_tiny_downstream_data, which regenerates tiny datasets '
            f'in place when their parameters change.')


def check_dense_image_size(image_size: int) -> None:
    """Detection / segmentation scenes need room for several objects."""
    if not is_int(image_size) or image_size < MIN_DENSE_IMAGE_SIZE:
        raise ValueError(
            f'image_size must be an int >= {MIN_DENSE_IMAGE_SIZE} for COCO '
            f'and ADE20K scenes, but got {image_size!r}. Use e.g. '
            f'image_size=128.')


__all__ = [
    'make_tiny_coco', 'make_tiny_ade20k', 'make_tiny_imagenet',
    'make_tiny_downstream_data', 'coco_categories', 'mask_to_polygons',
    'COCO_CLASSES', 'COCO_SHAPE_CATEGORIES', 'ADE20K_LABELS',
    'ADE20K_SHAPE_CLASSES', 'ADE20K_STUFF', 'STAMP_NAME'
]
