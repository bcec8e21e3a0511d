"""iNaturalist 2019 (issue 18, part 2): the dataset reads the official json
layout, and the tiny fine-grained transfer config trains on it."""
import copy
import json
import math
import os
import os.path as osp
import shutil

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmsdae.datasets import INat2019
from mmsdae.datasets.tiny_downstream import make_tiny_downstream_data

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs', 'hybrid_distill', 'benchmarks',
                'vit-tiny-p8_1xb16-coslr-2e_tiny-inat2019-64px.py')


def write_inat2019(imagenet, root, num_categories=1010):
    """The official iNaturalist 2019 layout built from the tiny ImageNet
    folder: category ``c`` is ImageNet label ``c``, stored under
    ``train_val2019/Shapes/<c>/``; the category list is written in reverse
    id order, as nothing promises the json sorts it."""
    for split, meta in (('train', 'train.txt'), ('val', 'val.txt')):
        images, annotations = [], []
        with open(osp.join(imagenet, 'meta', meta)) as f:
            for i, line in enumerate(f):
                path, label = line.split()
                name = f'train_val2019/Shapes/{label}/{split}_{i}.jpg'
                os.makedirs(osp.dirname(osp.join(root, name)), exist_ok=True)
                shutil.copy(osp.join(imagenet, split, path),
                            osp.join(root, name))
                images.append(dict(id=100 * i + 7, file_name=name))
                annotations.append(
                    dict(id=i, image_id=100 * i + 7, category_id=int(label)))
        categories = [
            dict(id=c, name=f'species {c}')
            for c in reversed(range(num_categories))
        ]
        with open(osp.join(root, f'{split}2019.json'), 'w') as f:
            json.dump(
                dict(images=images, annotations=annotations,
                     categories=categories), f)


@pytest.fixture(scope='module')
def tiny_inat(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_inat')
    make_tiny_downstream_data(str(root / 'tiny'))
    write_inat2019(str(root / 'tiny' / 'imagenet'), str(root / 'inat2019'))
    return root


def test_reads_labels_and_files_from_the_official_json(tiny_inat):
    data = INat2019(data_root=str(tiny_inat / 'inat2019'), split='val')
    with open(tiny_inat / 'tiny' / 'imagenet' / 'meta' / 'val.txt') as f:
        expected = [int(line.split()[1]) for line in f]
    assert [data.get_data_info(i)['gt_label']
            for i in range(len(data))] == expected
    assert len(data.CLASSES) == 1010
    assert data.CLASSES[3] == 'species 3'  # sorted by id, not file order
    assert all(osp.isfile(data.get_data_info(i)['img_path'])
               for i in range(len(data)))


def test_missing_folder_and_test_split_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='train_val2019'):
        INat2019(data_root=str(tmp_path))
    with pytest.raises(ValueError, match='split'):
        INat2019(data_root=str(tmp_path), split='test')


def test_tiny_transfer_config_trains_on_the_layout(tiny_inat, tmp_path):
    cfg = Config.fromfile(TINY)
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = str(tiny_inat / 'inat2019')
    cfg.test_dataloader = cfg.val_dataloader
    cfg.model.backbone.init_cfg = None
    cfg.train_cfg.max_epochs = 1  # 40 images: 3 iterations
    cfg.param_scheduler = []
    cfg.work_dir = str(tmp_path)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.log_level = 'WARNING'
    init_default_scope('mmpretrain')
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    before = runner.model.head.fc.weight.detach().clone()
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    assert not runner.model.head.fc.weight.detach().equal(before)
    assert runner.model.head.fc.out_features == 1010
    top1 = float(runner.test()['accuracy/top1'])
    assert 0 <= top1 <= 100
