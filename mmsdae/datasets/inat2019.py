"""iNaturalist 2019 (Van Horn et al. 2018; the FGVC6 competition release),
which mmpretrain 1.2 does not provide. The official archives unpack to::

    data/inat2019/
    ├── train_val2019/<supercategory>/<category id>/<md5>.jpg
    ├── train2019.json    265,213 images
    ├── val2019.json        3,030 images
    └── test2019.json     (no labels)

Each json is COCO-style: ``images`` (``id``, ``file_name`` relative to the
root, e.g. ``train_val2019/Plants/400/<md5>.jpg``), ``annotations``
(``image_id``, ``category_id``) and ``categories`` (``id`` 0-1009,
``name``). Fine-grained transfer is scored on ``val`` (the test labels were
never released)."""
import json
import os.path as osp
from typing import List

from mmpretrain.datasets.base_dataset import BaseDataset
from mmpretrain.registry import DATASETS

NUM_CLASSES = 1010
IMAGE_FOLDER = 'train_val2019'


@DATASETS.register_module()
class INat2019(BaseDataset):
    """iNaturalist 2019, read from the official json files.

    Args:
        data_root (str): the folder holding ``train_val2019/`` and the json
            files.
        split (str): ``'train'`` or ``'val'``.
        **kwargs: :class:`BaseDataset`'s arguments (``pipeline``,
            ``indices``, ...).
    """

    def __init__(self, data_root: str, split: str = 'train', **kwargs):
        if split not in ('train', 'val'):
            raise ValueError(f"INat2019: split must be 'train' or 'val' (the "
                             f'test labels are not public), got {split!r}.')
        ann_file = f'{split}2019.json'
        missing = [
            name for name in (IMAGE_FOLDER, ann_file)
            if not osp.exists(osp.join(data_root, name))
        ]
        if missing:
            raise FileNotFoundError(
                f'INat2019: {missing} not found under data_root={data_root!r}'
                f': unpack train_val2019.tar.gz and train_val2019.json.tar.gz'
                ' of the iNaturalist 2019 (FGVC6) release there, or set '
                'data_root to the folder that holds them.')
        self.split = split
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            test_mode=split == 'val',
            **kwargs)

    def load_data_list(self) -> List[dict]:
        with open(self.ann_file) as f:
            ann = json.load(f)
        categories = sorted(ann['categories'], key=lambda c: c['id'])
        index = {c['id']: i for i, c in enumerate(categories)}
        if 'classes' not in self._metainfo:
            self._metainfo['classes'] = tuple(c['name'] for c in categories)
        label = {a['image_id']: index[a['category_id']]
                 for a in ann['annotations']}
        return [
            dict(img_path=osp.join(self.data_root, image['file_name']),
                 gt_label=label[image['id']]) for image in ann['images']
        ]

    def extra_repr(self) -> List[str]:
        return [f'Root of dataset: \t{self.data_root}',
                f'Split: \t{self.split}']
