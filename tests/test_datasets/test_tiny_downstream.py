# Copyright (c) OpenMMLab. All rights reserved.
"""Tiny COCO / ADE20K / ImageNet sets read by the real classes and metrics.

CPU only; the datasets are written once per module (well under a second).
"""
import filecmp
import glob
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmsdae.datasets import tiny_downstream as td
from mmsdae.datasets.procedural import ShapesGenerator
from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(ROOT, 'tools', 'dataset_converters', 'make_tiny_data.py')

DENSE = dict(num_train=3, num_val=4, image_size=128, seed=0)
CLS = dict(num_train=12, num_val=8, image_size=32, num_classes=5, seed=0)
# Parameters of make_tiny_downstream_data small enough for repeated calls.
SMALL_ALL = dict(
    num_train=2,
    num_val=1,
    image_size=64,
    imagenet_num_train=4,
    imagenet_num_val=2,
    imagenet_image_size=16,
    num_classes=3)
THING_LABELS = sorted(td.ADE20K_LABELS[name]
                      for name in td.ADE20K_SHAPE_CLASSES.values())
VIVID_SATURATION = 0.6  # vivid shapes are >= 0.7, muted clutter <= 0.45


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    return dict(
        coco=td.make_tiny_coco(str(root / 'coco'), **DENSE),
        ade=td.make_tiny_ade20k(str(root / 'ade'), **DENSE),
        imagenet=td.make_tiny_imagenet(str(root / 'imagenet'), **CLS))


def read_json(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def saturation(image_rgb):
    return cv2.cvtColor(image_rgb, cv2.COLOR_RGB2HSV)[..., 1] / 255.0


# ----------------------------------------------------------------------------
# Tables and determinism
# ----------------------------------------------------------------------------
def test_tables_match_the_real_class_lists():
    from mmdet.datasets import CocoDataset
    from mmseg.datasets import ADE20KDataset
    categories = td.coco_categories()
    assert [c['name'] for c in categories] == list(
        CocoDataset.METAINFO['classes'])
    ids = [c['id'] for c in categories]
    assert len(set(ids)) == 80 and ids == sorted(ids)
    assert ids[-1] == 90 and {12, 26, 29, 30, 45, 66, 68, 69, 71,
                              83}.isdisjoint(ids)
    by_name = dict(zip(CocoDataset.METAINFO['classes'], ids))
    assert {by_name[n] for n in td.COCO_SHAPE_CATEGORIES.values()} == {
        37, 84, 38, 34, 5}
    ade_classes = ADE20KDataset.METAINFO['classes']
    for name, label in td.ADE20K_LABELS.items():
        assert ade_classes[label - 1].strip() == name


def test_same_seed_same_bytes_other_seed_differs(tmp_path, data):
    again = dict(
        coco=td.make_tiny_coco(str(tmp_path / 'coco'), **DENSE),
        ade=td.make_tiny_ade20k(str(tmp_path / 'ade'), **DENSE),
        imagenet=td.make_tiny_imagenet(str(tmp_path / 'imagenet'), **CLS))
    for name in again:
        first, second = data[name]['root'], again[name]['root']
        files = sorted(
            osp.relpath(p, first)
            for p in glob.glob(osp.join(first, '**', '*'), recursive=True)
            if osp.isfile(p))
        assert files
        _, mismatch, errors = filecmp.cmpfiles(
            first, second, files, shallow=False)
        assert not mismatch and not errors, (name, mismatch, errors)

    other = td.make_tiny_coco(str(tmp_path / 'coco1'), **{**DENSE, 'seed': 1})
    ann = 'annotations/instances_val2017.json'
    assert read_json(osp.join(other['root'], ann)) != read_json(
        osp.join(data['coco']['root'], ann))
    other = td.make_tiny_ade20k(str(tmp_path / 'ade1'), **{**DENSE, 'seed': 1})
    png = 'annotations/validation/ADE_val_00000001.png'
    assert not np.array_equal(
        cv2.imread(osp.join(other['root'], png), cv2.IMREAD_UNCHANGED),
        cv2.imread(osp.join(data['ade']['root'], png), cv2.IMREAD_UNCHANGED))


# ----------------------------------------------------------------------------
# COCO
# ----------------------------------------------------------------------------
def test_coco_layout_and_json(data):
    from pycocotools.coco import COCO
    info = data['coco']
    root = info['root']
    for split, first_id in (('train', 1), ('val', 10**6 + 1)):
        coco = COCO(osp.join(root, f'annotations/instances_{split}2017.json'))
        assert coco.loadCats(coco.getCatIds()) == td.coco_categories()
        img_ids = sorted(coco.getImgIds())
        assert img_ids == list(range(first_id,
                                     first_id + DENSE[f'num_{split}']))
        ann_ids = coco.getAnnIds()
        assert len(ann_ids) == len(set(ann_ids)) == \
            info['num_instances'][split]
        for img in coco.loadImgs(img_ids):
            assert img['file_name'] == f'{img["id"]:012d}.jpg'
            image = cv2.imread(
                osp.join(root, f'{split}2017', img['file_name']))
            assert image.shape == (img['height'], img['width'], 3)
            assert image.shape == (128, 128, 3)
            assert 1 <= len(coco.getAnnIds(imgIds=img['id'])) <= 4
        for ann in coco.loadAnns(ann_ids):
            assert ann['iscrowd'] == 0
            assert all(len(p) >= 6 and len(p) % 2 == 0
                       for p in ann['segmentation'])
            mask = coco.annToMask(ann).astype(bool)
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            tight = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert np.abs(np.subtract(tight, (x, y, x + w, y + h))).max() <= 1
            assert abs(mask.sum() - ann['area']) <= 0.03 * ann['area']
            assert ann['area'] >= td.MIN_VISIBLE_AREA * 128 * 128
            assert max(w, h) >= 16


def test_coco_masks_are_the_drawn_visible_pixels():
    """Annotated pixels are exactly vivid shape pixels of the raw render."""
    generator = ShapesGenerator(image_size=128)
    for index in range(4):
        image, instances = td.render_coco_scene(generator, 0, 'val', index)
        vivid = saturation(image) >= VIVID_SATURATION
        union = np.zeros(vivid.shape, dtype=bool)
        for _, mask, _ in instances:
            assert not (union & mask).any()  # visible masks are disjoint
            union |= mask
        assert vivid[union].all()


def test_mask_to_polygons_is_pixel_exact_and_flags_holes():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for _ in range(20):
        noise = cv2.GaussianBlur(rng.random((48, 48)), (0, 0), 3)
        mask = noise > np.quantile(noise, 0.6)
        polygons, has_holes = td.mask_to_polygons(mask)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, 48, 48))
        decoded = mask_utils.decode(rle).astype(bool)
        if has_holes:
            assert (decoded & ~mask).any()
        else:
            np.testing.assert_array_equal(decoded, mask)
    ring = np.zeros((20, 20), dtype=bool)
    ring[4:16, 4:16] = True
    ring[8:12, 8:12] = False
    assert td.mask_to_polygons(ring)[1]
    assert td.mask_to_polygons(np.zeros((5, 5), dtype=bool)) == ([], False)


def test_mmdet_coco_dataset_loads_it(data):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    info = data['coco']
    dataset = CocoDataset(
        data_root=info['root'],
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ],
        test_mode=False)
    assert len(dataset) == DENSE['num_val']
    assert len(dataset.metainfo['classes']) == 80
    coco = read_json(osp.join(info['root'], info['ann_file']['val']))
    total = 0
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        expected = [a for a in coco['annotations']
                    if a['image_id'] == sample.img_id]
        gt = sample.gt_instances
        assert len(gt) == len(expected) >= 1
        assert dataset[i]['inputs'].shape == (3, 128, 128)
        np.testing.assert_array_equal(gt.masks.areas,
                                      [a['area'] for a in expected])
        total += len(gt)
    assert total == info['num_instances']['val']


def coco_predictions(coco, shift=0):
    from mmdet.datasets import CocoDataset
    classes = CocoDataset.METAINFO['classes']
    names = {c['id']: c['name'] for c in coco.loadCats(coco.getCatIds())}
    samples = []
    for img in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
        boxes = [[x + shift, y + shift, x + w + shift, y + h + shift]
                 for x, y, w, h in (a['bbox'] for a in anns)]
        masks = np.stack([coco.annToMask(a) for a in anns]).astype(bool)
        samples.append(
            dict(
                img_id=img['id'],
                ori_shape=(img['height'], img['width']),
                pred_instances=dict(
                    bboxes=torch.tensor(boxes, dtype=torch.float32),
                    scores=torch.ones(len(anns)),
                    labels=torch.tensor(
                        [classes.index(names[a['category_id']])
                         for a in anns]),
                    masks=torch.from_numpy(masks))))
    return samples


def test_coco_metric_perfect_predictions_give_ap_one(data):
    from mmdet.datasets import CocoDataset
    from mmdet.evaluation import CocoMetric
    from pycocotools.coco import COCO
    info = data['coco']
    ann_file = osp.join(info['root'], info['ann_file']['val'])
    coco = COCO(ann_file)
    results = {}
    for shift in (0, 6):
        metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
        metric.dataset_meta = dict(classes=CocoDataset.METAINFO['classes'])
        samples = coco_predictions(coco, shift)
        metric.process({}, samples)
        results[shift] = metric.evaluate(size=len(samples))
    assert results[0]['coco/bbox_mAP'] == pytest.approx(1.0)
    assert results[0]['coco/segm_mAP'] == pytest.approx(1.0)
    assert results[6]['coco/bbox_mAP'] < 0.8
    assert results[6]['coco/segm_mAP'] == pytest.approx(1.0)


# ----------------------------------------------------------------------------
# ADE20K
# ----------------------------------------------------------------------------
def test_ade20k_layout_and_pixel_exact_label_maps(data):
    info = data['ade']
    root = info['root']
    generator = ShapesGenerator(image_size=128)
    seen = set()
    for split, folder in (('train', 'training'), ('val', 'validation')):
        images = sorted(os.listdir(osp.join(root, 'images', folder)))
        labels = sorted(os.listdir(osp.join(root, 'annotations', folder)))
        assert [osp.splitext(n)[0] for n in images] == \
            [osp.splitext(n)[0] for n in labels] == \
            [f'ADE_{split}_{i + 1:08d}' for i in range(DENSE[f'num_{split}'])]
        for index, name in enumerate(labels):
            label_map = cv2.imread(
                osp.join(root, 'annotations', folder, name),
                cv2.IMREAD_UNCHANGED)
            assert label_map.dtype == np.uint8 and label_map.shape == (128,
                                                                       128)
            image, drawn = td.render_ade20k_scene(generator, 0, split, index)
            np.testing.assert_array_equal(label_map, drawn)
            # Thing labels are exactly the vivid pixels of the raw render.
            is_thing = np.isin(label_map, THING_LABELS)
            vivid = saturation(image) >= VIVID_SATURATION
            np.testing.assert_array_equal(is_thing, vivid)
            seen.update(np.unique(label_map).tolist())
    assert td.ADE20K_OTHER in seen
    assert seen & set(THING_LABELS)
    assert seen <= set(td.ADE20K_LABELS.values()) | {td.ADE20K_OTHER}


def test_mmseg_ade20k_dataset_and_iou_metric(data):
    from mmseg.datasets import ADE20KDataset
    from mmseg.evaluation import IoUMetric
    from mmseg.utils import register_all_modules
    register_all_modules()
    dataset = ADE20KDataset(
        data_root=data['ade']['root'],
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='PackSegInputs')
        ])
    assert len(dataset) == DENSE['num_val']
    allowed = {label - 1 for label in td.ADE20K_LABELS.values()} | {255}
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=dataset.metainfo['classes'])
    seen = set()
    for i in range(len(dataset)):
        gt = dataset[i]['data_samples'].gt_sem_seg.data
        values = set(torch.unique(gt).tolist())
        assert values <= allowed
        seen |= values
        metric.process({}, [
            dict(pred_sem_seg=dict(data=gt.clone()),
                 gt_sem_seg=dict(data=gt))
        ])
    assert 255 in seen and len(seen) >= 4
    result = metric.evaluate(size=len(dataset))
    assert result['mIoU'] == pytest.approx(100.0)


# ----------------------------------------------------------------------------
# ImageNet
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('form', ['split', 'prefix_str', 'prefix_dict'])
def test_mmpretrain_imagenet_loads_it(data, form):
    from mmpretrain.datasets import ImageNet
    from mmpretrain.evaluation import Accuracy
    info = data['imagenet']
    generator = ShapesGenerator(
        image_size=CLS['image_size'], num_classes=CLS['num_classes'],
        seed=CLS['seed'])
    for split, offset in (('train', 0), ('val', td.VAL_INDEX_OFFSET)):
        kwargs = dict(
            split=dict(split=split),
            prefix_str=dict(data_prefix=split, ann_file=f'meta/{split}.txt'),
            prefix_dict=dict(
                data_prefix=dict(img_path=f'{split}/'),
                ann_file=f'meta/{split}.txt'))[form]
        dataset = ImageNet(
            data_root=info['root'],
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='PackInputs')],
            **kwargs)
        count = CLS[f'num_{split}']
        assert len(dataset) == count
        assert len(dataset.metainfo['classes']) == 1000
        labels = dataset.get_gt_labels().tolist()
        assert labels == info['labels'][split] == [
            generator.label(offset + i) for i in range(count)
        ]
        packed = dataset[0]
        assert packed['inputs'].shape == (3, 32, 32)
        metric = Accuracy(topk=(1, ))
        metric.process({}, [
            dict(pred_label=torch.tensor([label]),
                 gt_label=torch.tensor([label])) for label in labels
        ])
        assert metric.evaluate(count)['accuracy/top1'] == pytest.approx(100)


# ----------------------------------------------------------------------------
# All three: stamp, idempotency, atomicity, CLI
# ----------------------------------------------------------------------------
def snapshot(folder):
    return {
        path: os.stat(path).st_mtime_ns
        for path in glob.glob(osp.join(folder, '**', '*'), recursive=True)
    }


def test_downstream_data_is_stamped_and_idempotent(tmp_path):
    root = str(tmp_path / 'tiny')
    first = td.make_tiny_downstream_data(root, **SMALL_ALL)
    assert {name: info['skipped'] for name, info in first.items()} == dict(
        coco=False, ade20k=False, imagenet=False)
    assert sorted(os.listdir(root)) == ['ade', 'coco', 'imagenet']
    assert os.listdir(osp.join(root, 'ade')) == ['ADEChallengeData2016']
    for info in first.values():
        assert osp.isfile(osp.join(info['root'], td.STAMP_NAME))
    before = snapshot(root)

    second = td.make_tiny_downstream_data(root, **SMALL_ALL)
    assert all(info['skipped'] for info in second.values())
    assert snapshot(root) == before  # nothing rewritten
    assert second['coco']['num_instances'] == first['coco']['num_instances']
    assert second['imagenet']['labels'] == first['imagenet']['labels']

    third = td.make_tiny_downstream_data(root, **{**SMALL_ALL, 'num_val': 2})
    assert not third['coco']['skipped'] and not third['ade20k']['skipped']
    assert third['imagenet']['skipped']
    assert len(os.listdir(osp.join(root, 'coco', 'val2017'))) == 2
    assert sorted(os.listdir(tmp_path / 'tiny')) == [
        'ade', 'coco', 'imagenet'
    ]  # no temporary folders left


def test_interrupted_write_keeps_the_previous_dataset(tmp_path, monkeypatch):
    root = str(tmp_path / 'tiny')
    td.make_tiny_downstream_data(root, **SMALL_ALL)
    before = snapshot(osp.join(root, 'imagenet'))

    def crash(folder, **kwargs):
        os.makedirs(osp.join(folder, 'train'))
        open(osp.join(folder, 'train', 'half.JPEG'), 'w').close()
        raise KeyboardInterrupt

    monkeypatch.setattr(td, 'make_tiny_imagenet', crash)
    with pytest.raises(KeyboardInterrupt):
        td.make_tiny_downstream_data(root, **{**SMALL_ALL, 'num_classes': 4})
    assert snapshot(osp.join(root, 'imagenet')) == before
    assert sorted(os.listdir(root)) == ['ade', 'coco', 'imagenet']


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    real = tmp_path / 'tiny' / 'coco'
    real.mkdir(parents=True)
    (real / 'instances_val2017.json').write_text('{}')
    with pytest.raises(FileExistsError, match='no .tiny_data_stamp.json'):
        td.make_tiny_downstream_data(str(tmp_path / 'tiny'), **SMALL_ALL)
    assert os.listdir(real) == ['instances_val2017.json']


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match='num_train must be an int >= 1'):
        td.make_tiny_coco(str(tmp_path), num_train=0)
    with pytest.raises(ValueError, match='image_size=128'):
        td.make_tiny_ade20k(str(tmp_path), image_size=16)
    with pytest.raises(ValueError, match='num_classes'):
        td.make_tiny_imagenet(str(tmp_path), num_classes=0)
    (tmp_path / 'old.png').write_bytes(b'')
    with pytest.raises(FileExistsError, match='is not empty'):
        td.make_tiny_ade20k(str(tmp_path))


def test_cli_writes_all_three(tmp_path, capsys):
    cli = load_tool(CLI)
    out = str(tmp_path / 'data' / 'tiny')
    args = [
        '--out', out, '--num-train', '2', '--num-val', '1', '--image-size',
        '64', '--imagenet-num-train', '4', '--imagenet-num-val', '2',
        '--imagenet-image-size', '16', '--num-classes', '3'
    ]
    cli.main(args)
    printed = capsys.readouterr().out
    for name in ('coco: wrote', 'ade20k: wrote', 'imagenet: wrote'):
        assert name in printed
    assert osp.isfile(osp.join(out, 'coco', 'annotations',
                               'instances_train2017.json'))
    assert len(glob.glob(osp.join(out, 'ade', 'ADEChallengeData2016',
                                  'annotations', 'training', '*.png'))) == 2
    assert osp.isfile(osp.join(out, 'imagenet', 'meta', 'val.txt'))
    cli.main(args)
    assert printed.count('wrote') == 3
    assert capsys.readouterr().out.count('up to date (skipped)') == 3
    with pytest.raises(SystemExit, match='num_val must be an int >= 1'):
        cli.main(['--out', out, '--num-val', '0'])
