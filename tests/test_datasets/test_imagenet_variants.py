"""ImageNet-C / -A / -R / -Sketch datasets (RC-MAE Table 7) on small folders
in the official layouts, the official class lists, the clear errors on a
wrong layout, and the tiny -A / -R / -Sketch writers."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from mmsdae.datasets import ImageNetA, ImageNetC, ImageNetR
from mmsdae.datasets.imagenet_variants import read_wnids
from mmsdae.datasets.tiny_downstream import write_jpeg
from mmsdae.datasets.tiny_robustness import make_tiny_wnid_folders


def image(path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    write_jpeg(str(path), np.zeros((8, 8, 3), np.uint8))


def test_class_lists_are_the_official_ones():
    all_wnids = read_wnids('imagenet1k')
    assert len(all_wnids) == len(set(all_wnids)) == 1000
    assert list(all_wnids) == sorted(all_wnids)  # ImageNet-1k label order
    assert all_wnids[:2] == ('n01440764', 'n01443537')  # tench, goldfish
    for dataset in (ImageNetA, ImageNetR):
        wnids = read_wnids(dataset.SUBSET)
        assert len(wnids) == len(set(wnids)) == 200
    index = {w: i for i, w in enumerate(all_wnids)}
    # The first 1000-way indices of the subsets, as the authors' eval.py
    # files write them: imagenet-r's comment "[1, 2, 4, 6, 8, 9, 11, 13,
    # 22, 23, ...]", natural-adv-examples' thousand_k_to_200 (6 -> 0,
    # 11 -> 1, 13 -> 2, 15, 17, 22, 23, 27, 30, 37 ...; 988 -> 199).
    r_idx = [index[w] for w in read_wnids('imagenet_r')]
    a_idx = [index[w] for w in read_wnids('imagenet_a')]
    assert r_idx[:10] == [1, 2, 4, 6, 8, 9, 11, 13, 22, 23]
    assert a_idx[:10] == [6, 11, 13, 15, 17, 22, 23, 27, 30, 37]
    assert a_idx[-3:] == [986, 987, 988]


def test_subset_labels_and_their_imagenet_indices(tmp_path):
    # stingray (1000-way 6) is ImageNet-A's first class, goldfinch (11) its
    # second; README-like files beside the folders are ignored
    image(tmp_path / 'n01498041' / 'a.jpg')
    image(tmp_path / 'n01531178' / 'b.jpg')
    (tmp_path / 'README.txt').write_text('x')
    init_default_scope('mmpretrain')
    dataset = DATASETS.build(dict(type='ImageNetA', data_root=str(tmp_path)))
    assert [d['gt_label'] for d in dataset] == [0, 1]
    assert dataset.metainfo['indices_in_1k'][:2] == (6, 11)
    assert dataset.metainfo['classes'][0] == 'stingray'
    assert len(dataset.metainfo['classes']) == 200


def test_imagenet_c_reads_corruption_and_severity(tmp_path):
    for c in ('fog', 'snow'):
        for s in (1, 2):
            image(tmp_path / c / str(s) / 'n01443537' / f'{c}{s}.JPEG')
    dataset = ImageNetC(
        data_root=str(tmp_path), corruptions=('fog', 'snow'),
        severities=(1, 2))
    got = [(d['corruption'], d['severity'], d['gt_label'],
            osp.basename(d['img_path']))
           for d in map(dataset.get_data_info, range(len(dataset)))]
    assert got == [('fog', 1, 1, 'fog1.JPEG'), ('fog', 2, 1, 'fog2.JPEG'),
                   ('snow', 1, 1, 'snow1.JPEG'), ('snow', 2, 1, 'snow2.JPEG')]


def test_missing_or_wrong_layout_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r'<data_root>/<wnid>/\*\.jpg \(200 wnids'):
        ImageNetR(data_root=str(tmp_path / 'absent'))
    with pytest.raises(FileNotFoundError,
                       match=r'<corruption>/<severity 1-5>/<wnid>'):
        ImageNetC(data_root=str(tmp_path / 'absent'))
    # one corruption unpacked, the others missing
    image(tmp_path / 'c' / 'fog' / '1' / 'n01440764' / 'x.JPEG')
    with pytest.raises(FileNotFoundError, match='74 corruption/severity'):
        ImageNetC(data_root=str(tmp_path / 'c'))
    # data_root one level too high (the archive's top folder above the wnids)
    image(tmp_path / 'r' / 'imagenet-r' / 'n01443537' / 'x.jpg')
    with pytest.raises(ValueError, match="not wnids.*'imagenet-r'"):
        ImageNetR(data_root=str(tmp_path / 'r'))


def test_tiny_renditions_keep_the_subset_classes(tmp_path):
    info = make_tiny_wnid_folders(str(tmp_path / 'r'), 'r', per_class=1)
    # tiny classes 0-9 are ImageNet classes 0-9; of these ImageNet-R has
    # goldfish, great white shark, hammerhead, stingray, hen, ostrich
    assert info['class_counts'] == {k: 1 for k in '124689'}
    dataset = ImageNetR(data_root=str(tmp_path / 'r'))
    labels = sorted(d['gt_label'] for d in dataset)
    assert [dataset.metainfo['indices_in_1k'][i] for i in labels] == [
        1, 2, 4, 6, 8, 9]
    sketch = make_tiny_wnid_folders(str(tmp_path / 's'), 'sketch',
                                    per_class=1)
    assert len(sketch['class_counts']) == 10
    grey = cv2.imread(str(next((tmp_path / 's').glob('*/*.JPEG'))))
    assert np.abs(np.diff(grey.astype(int), axis=2)).max() <= 2
    assert grey.mean() > 128  # dark strokes on white
