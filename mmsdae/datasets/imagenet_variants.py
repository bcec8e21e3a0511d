# Copyright (c) OpenMMLab. All rights reserved.
"""ImageNet robustness test sets (RC-MAE Sec. 6.5, Table 7) in their official
layouts.

============== ============================================ ==============
dataset        layout (``data_root``)                       classes
============== ============================================ ==============
ImageNetC      ``<corruption>/<severity 1-5>/<wnid>/*.JPEG`` 1000
ImageNetA      ``<wnid>/*.jpg``                             200 of 1000
ImageNetR      ``<wnid>/*.jpg``                             200 of 1000
ImageNetSketch ``<wnid>/*.JPEG``                            1000
============== ============================================ ==============

Labels: for ImageNet-C and -Sketch the ImageNet-1k label (the wnid's index
in the sorted list of the 1000 wnids); for -A and -R the wnid's index in the
official 200-class list (``wnids/imagenet_a.txt``, ``wnids/imagenet_r.txt``,
ImageNet-1k order). Their ``metainfo['indices_in_1k']`` holds the 1000-way
label of each of the 200 classes, which
:class:`mmsdae.evaluation.SubsetAccuracy` uses to restrict the classifier's
logits. Class folders may be a subset of the list (a warning says how many
are there); a folder that is not a wnid of the list is an error.
"""
import os
import os.path as osp
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

from mmengine.logging import MMLogger
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.custom import get_samples
from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
from mmpretrain.registry import DATASETS

WNID_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'wnids')

#: The 15 corruptions of the mCE (Hendrycks & Dietterich 2019, Sec. 3; the
#: four "extra" ones of the archive, speckle_noise, gaussian_blur, spatter
#: and saturate, are not part of it), in the paper's order.
IMAGENET_C_CORRUPTIONS = (
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
    'glass_blur', 'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog',
    'brightness', 'contrast', 'elastic_transform', 'pixelate',
    'jpeg_compression')
IMAGENET_C_SEVERITIES = (1, 2, 3, 4, 5)


@lru_cache(maxsize=None)
def read_wnids(name: str) -> Tuple[str, ...]:
    """The wnids of ``wnids/<name>.txt`` (``imagenet1k``, ``imagenet_a``,
    ``imagenet_r``), in file order; ``#`` lines are comments."""
    with open(osp.join(WNID_DIR, f'{name}.txt'), encoding='utf-8') as f:
        return tuple(
            line.strip() for line in f
            if line.strip() and not line.startswith('#'))


def missing_root_error(root: str, name: str, layout: str) -> FileNotFoundError:
    return FileNotFoundError(
        f'{name}: the folder {root!r} does not exist. Expected the official '
        f'layout {layout} under data_root (see configs/rcmae/README.md, '
        f'"Robustness"); for a CPU check, write the tiny version with '
        f'python tools/dataset_converters/make_tiny_robustness_data.py.')


def scan_wnid_folders(root: str, label_of: Dict[str, int], name: str,
                      layout: str, is_valid_file) -> List[Tuple[str, int]]:
    """``(path, label)`` of every image in ``root/<wnid>/``.

    Raises a FileNotFoundError when ``root`` is missing or holds no image, a
    ValueError when a sub-folder is not one of ``label_of``'s wnids.
    """
    if not osp.isdir(root):
        raise missing_root_error(root, name, layout)
    folders = sorted(d for d in os.listdir(root)
                     if osp.isdir(osp.join(root, d)))
    unknown = [d for d in folders if d not in label_of]
    if unknown:
        raise ValueError(
            f'{name}: {root!r} has {len(unknown)} sub-folder(s) that are not '
            f'wnids of its class list, e.g. {unknown[:3]}. Expected the '
            f'official layout {layout}; point data_root at the folder that '
            f'holds the wnid folders.')
    samples, _ = get_samples(root, {d: label_of[d]
                                    for d in folders}, is_valid_file)
    if not samples:
        raise FileNotFoundError(
            f'{name}: no image under {root!r}. Expected the official layout '
            f'{layout}.')
    return [(osp.join(root, path), label) for path, label in samples]


def warn_if_partial(name: str, labels, num_classes: int) -> None:
    """Warn when some classes have no image (a partial download)."""
    found = len(set(labels))
    if found < num_classes:
        MMLogger.get_current_instance().warning(
            f'{name}: images of {found} of the {num_classes} classes found; '
            f'the others are absent (a partial download or a tiny set).')


class _WnidFolderDataset(CustomDataset):
    """``data_root/<wnid>/<image>`` with labels from a fixed wnid list."""

    SUBSET = 'imagenet1k'  # name of the wnid list in wnids/
    LAYOUT = '<data_root>/<wnid>/*.JPEG'

    def __init__(self, data_root: str, **kwargs):
        all_wnids = read_wnids('imagenet1k')
        self.wnids = read_wnids(self.SUBSET)
        index_in_1k = {wnid: i for i, wnid in enumerate(all_wnids)}
        indices = [index_in_1k[w] for w in self.wnids]
        metainfo = dict(
            classes=tuple(IMAGENET_CATEGORIES[i] for i in indices),
            wnids=self.wnids,
            indices_in_1k=tuple(indices))
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    def _find_samples(self):
        label_of = {wnid: i for i, wnid in enumerate(self.wnids)}
        samples = scan_wnid_folders(self.img_prefix, label_of,
                                    type(self).__name__, self.LAYOUT,
                                    self.is_valid_file)
        warn_if_partial(type(self).__name__, [s[1] for s in samples],
                        len(self.wnids))
        # CustomDataset.load_data_list joins img_prefix again: give it
        # paths relative to img_prefix.
        return [(osp.relpath(path, self.img_prefix), label)
                for path, label in samples]


@DATASETS.register_module()
class ImageNetA(_WnidFolderDataset):
    """ImageNet-A (Hendrycks et al. 2021b): 7500 natural adversarial images
    of 200 ImageNet classes; the archive ``imagenet-a.tar`` unpacks to
    ``imagenet-a/<wnid>/*.jpg`` (``data_root='data/imagenet-a'``)."""

    SUBSET = 'imagenet_a'
    LAYOUT = '<data_root>/<wnid>/*.jpg (200 wnids, imagenet-a.tar)'


@DATASETS.register_module()
class ImageNetR(_WnidFolderDataset):
    """ImageNet-R (Hendrycks et al. 2021a): 30000 renditions (art, cartoons,
    sketches, toys, ...) of 200 ImageNet classes; ``imagenet-r.tar`` unpacks
    to ``imagenet-r/<wnid>/*.jpg`` (``data_root='data/imagenet-r'``)."""

    SUBSET = 'imagenet_r'
    LAYOUT = '<data_root>/<wnid>/*.jpg (200 wnids, imagenet-r.tar)'


@DATASETS.register_module()
class ImageNetSketch(_WnidFolderDataset):
    """ImageNet-Sketch (Wang et al. 2019): 50889 sketches of the 1000
    ImageNet classes; the archive ``ImageNet-Sketch.zip`` unpacks to
    ``sketch/<wnid>/*.JPEG`` (``data_root='data/imagenet-sketch/sketch'``)."""

    LAYOUT = '<data_root>/<wnid>/*.JPEG (1000 wnids, ImageNet-Sketch.zip)'


@DATASETS.register_module()
class ImageNetC(CustomDataset):
    """ImageNet-C (Hendrycks & Dietterich 2019): the 50000 ImageNet val
    images (resized to 256, center-cropped to 224) under each corruption and
    severity. The archives (``noise.tar``, ``blur.tar``, ``weather.tar``,
    ``digital.tar``) unpack to ``<corruption>/<severity>/<wnid>/*.JPEG``
    (``data_root='data/imagenet-c'``).

    Each sample carries ``corruption`` and ``severity``; add them to the
    ``meta_keys`` of ``PackInputs`` so that
    :class:`mmsdae.evaluation.MeanCorruptionError` sees them.

    Args:
        data_root (str): The folder that holds the corruption folders.
        corruptions (Sequence[str]): Corruptions to read. Defaults to the 15
            of the mCE.
        severities (Sequence[int]): Severities to read. Defaults to 1-5.
        **kwargs: Other arguments of mmpretrain's ``CustomDataset``.
    """

    LAYOUT = '<data_root>/<corruption>/<severity 1-5>/<wnid>/*.JPEG'

    def __init__(self,
                 data_root: str,
                 corruptions: Sequence[str] = IMAGENET_C_CORRUPTIONS,
                 severities: Sequence[int] = IMAGENET_C_SEVERITIES,
                 **kwargs):
        self.corruptions = tuple(corruptions)
        self.severities = tuple(int(s) for s in severities)
        all_wnids = read_wnids('imagenet1k')
        metainfo = dict(
            classes=IMAGENET_CATEGORIES,
            wnids=all_wnids,
            corruptions=self.corruptions,
            severities=self.severities)
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isdir(self.img_prefix):
            raise missing_root_error(self.img_prefix, 'ImageNetC',
                                     self.LAYOUT)
        missing = [
            f'{c}/{s}' for c in self.corruptions for s in self.severities
            if not osp.isdir(osp.join(self.img_prefix, c, str(s)))
        ]
        if missing:
            raise FileNotFoundError(
                f'ImageNetC: {len(missing)} corruption/severity folder(s) '
                f'missing under {self.img_prefix!r}, e.g. {missing[:3]}. '
                f'Expected the official layout {self.LAYOUT} (unpack all '
                f'four archives there), or pass corruptions=/severities= to '
                f'read a subset.')
        label_of = {wnid: i for i, wnid in enumerate(self.metainfo['wnids'])}
        data_list = []
        for corruption in self.corruptions:
            for severity in self.severities:
                root = osp.join(self.img_prefix, corruption, str(severity))
                for path, label in scan_wnid_folders(
                        root, label_of, 'ImageNetC', self.LAYOUT,
                        self.is_valid_file):
                    data_list.append(
                        dict(
                            img_path=path,
                            gt_label=label,
                            corruption=corruption,
                            severity=severity))
        warn_if_partial('ImageNetC', [d['gt_label'] for d in data_list],
                        len(label_of))
        return data_list


__all__ = [
    'ImageNetA', 'ImageNetC', 'ImageNetR', 'ImageNetSketch',
    'IMAGENET_C_CORRUPTIONS', 'IMAGENET_C_SEVERITIES', 'read_wnids'
]
