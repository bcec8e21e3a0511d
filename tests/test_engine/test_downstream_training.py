"""Every tiny downstream config trains on the generated COCO / ADE20K /
ImageNet folders through MMEngine's Runner and is scored by the real
metrics (mmpretrain Accuracy, mmdet CocoMetric via pycocotools, mmseg
IoUMetric)."""
import copy
import json
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmsdae.datasets.tiny_downstream import make_tiny_downstream_data
from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'configs', 'sdae', 'benchmarks')
TINY = {
    'cls': 'vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py',
    'linear': 'vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px.py',
    'det': 'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py',
    'seg': 'upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py',
}


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """The three tiny datasets, written once per test session."""
    root = tmp_path_factory.mktemp('tiny_data')
    make_tiny_downstream_data(str(root))
    return str(root)


def tiny_config(kind, data_root, work_dir, checkpoint=None):
    """The tiny config of ``kind`` pointed at ``data_root`` (the folder that
    holds coco/, ade/ and imagenet/), logging into ``work_dir``."""
    cfg = Config.fromfile(osp.join(BENCH, TINY[kind]))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        dataset.data_root = dataset.data_root.replace('data/tiny', data_root)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if 'ann_file' in cfg[evaluator]:
            cfg[evaluator].ann_file = cfg[evaluator].ann_file.replace(
                'data/tiny', data_root)
    if checkpoint is None:
        cfg.model.backbone.init_cfg = None
    else:
        cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.log_level = 'WARNING'
    return cfg


def train_and_test(cfg):
    """Train with the config's loop, then evaluate its test set; returns the
    metrics dict and the last logged loss."""
    init_default_scope(cfg.default_scope)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    return runner.test(), loss


def check_metric(metrics, key, low, high):
    assert key in metrics, sorted(metrics)
    value = float(metrics[key])
    assert low <= value <= high and not math.isnan(value), (key, value)
    return value


@pytest.mark.parametrize('kind', ['cls', 'linear'])
def test_classification_protocols_on_tiny_imagenet(kind, tiny_data,
                                                   tmp_path):
    metrics, loss = train_and_test(tiny_config(kind, tiny_data, tmp_path))
    assert math.isfinite(loss)
    top1 = check_metric(metrics, 'accuracy/top1', 0, 100)
    top5 = check_metric(metrics, 'accuracy/top5', 0, 100)
    assert top5 >= top1
    if kind == 'linear':
        # 10 shape classes: chance is 10 %. Even a random-init frozen ViT
        # gives features a linear head separates in 10 epochs; a probe
        # whose head does not train (e.g. a LARS lr too small) stays near
        # chance.
        assert top1 >= 20, metrics


def test_mask_rcnn_on_tiny_coco(tiny_data, tmp_path):
    metrics, loss = train_and_test(tiny_config('det', tiny_data, tmp_path))
    assert math.isfinite(loss)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        check_metric(metrics, key, 0, 1)


def test_upernet_on_tiny_ade20k(tiny_data, tmp_path):
    metrics, loss = train_and_test(tiny_config('seg', tiny_data, tmp_path))
    assert math.isfinite(loss)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        check_metric(metrics, key, 0, 100)


@pytest.mark.slow
def test_pretrain_convert_then_detect_and_segment(tiny_data, tmp_path):
    """The whole transfer path: a few SdAE pre-training iterations (the CPU
    demo config) -> export the student with the converter CLI (checked
    against the detection config's backbone) -> Mask R-CNN and UperNet
    fine-tuning from that file -> their metrics, printed as numbers."""
    import torch

    from mmsdae.utils.checkpoint import (build_backbone_from_config,
                                         check_against_backbone)
    tool = load_tool('model_converters/sdae_to_vit.py')

    pretrain = Config.fromfile(
        osp.join(ROOT, 'configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-'
                 '64px.py'))
    pretrain.work_dir = str(tmp_path / 'pretrain')
    pretrain.train_cfg.max_epochs = 1
    pretrain.train_dataloader.dataset.num_images = 64  # 2 iterations
    pretrain.train_dataloader.num_workers = 0
    pretrain.train_dataloader.persistent_workers = False
    pretrain.default_hooks.checkpoint = dict(type='CheckpointHook',
                                             interval=1)
    pretrain.log_level = 'WARNING'
    init_default_scope('mmpretrain')
    Runner.from_cfg(pretrain).train()
    pretrained = str(tmp_path / 'pretrain' / 'epoch_1.pth')

    encoder = str(tmp_path / 'encoder.pth')
    det_cfg_path = osp.join(BENCH, TINY['det'])
    tool.main([pretrained, encoder, '--config', det_cfg_path])
    state = torch.load(encoder, map_location='cpu')['state_dict']
    student = torch.load(pretrained, map_location='cpu')['state_dict']
    for kind in ('det', 'seg', 'cls'):  # zero missing keys in every backbone
        backbone = build_backbone_from_config(osp.join(BENCH, TINY[kind]))
        report = check_against_backbone(state, backbone)
        # only what fine-tuning adds: the classifier's fc norm, the
        # segmentation backbone's relative position tables (zero at start)
        fresh = {'ln2.weight', 'ln2.bias'} if kind == 'cls' else {
            f'layers.{i}.attn.rel_pos.relative_position_bias_table'
            for i in range(4)} if kind == 'seg' else set()
        assert set(report['missing']) == fresh

    results = {}
    for kind in ('det', 'seg'):
        cfg = tiny_config(kind, tiny_data, tmp_path / kind, encoder)
        init_default_scope(cfg.default_scope)
        runner = Runner.from_cfg(copy.deepcopy(cfg))
        runner.model.init_weights()  # what train() does first
        loaded = runner.model.backbone.layers[2].attn.qkv.weight
        assert torch.equal(loaded,
                           student['backbone.layers.2.attn.qkv.weight'])
        runner.train()
        results[kind] = runner.test()
    print({k: {m: round(float(v), 4) for m, v in r.items()}
           for k, r in results.items()})
    check_metric(results['det'], 'coco/bbox_mAP', 0, 1)
    check_metric(results['det'], 'coco/segm_mAP', 0, 1)
    check_metric(results['seg'], 'mIoU', 0, 100)


LEARN = {
    'det': 'mask-rcnn_vit-tiny-p8_fpn_1xb2-12e_tiny-coco-128px.py',
    'seg': 'upernet_vit-tiny-p8_1xb2-160i_tiny-ade20k-64px.py',
}  # run side by side from the SdAE demo and a random encoder by
# tools/run_downstream_demo.sh
# From a random encoder the UperNet learning run scores 10.0 mIoU on the 16
# held-out images (11.8 from the SdAE demo encoder); trained on labels
# shifted by one class it scores 0.35. The Mask R-CNN learning run scores
# held-out box AP 0.192 (two threads; 0.204 with one); with the five shape
# categories permuted, 0.033 (README, "Downstream transfer").
SEG_FLOOR = 5.0
DET_FLOOR = 0.10  # held-out box AP


@pytest.fixture(scope='session')
def tiny_learn_data(tmp_path_factory):
    """The data/tiny-learn folders: 48 training and 16 held-out images."""
    root = tmp_path_factory.mktemp('tiny_learn')
    make_tiny_downstream_data(str(root), num_train=48, num_val=16)
    return str(root)


def learn_config(kind, data_root, work_dir):
    """The learning run of ``kind`` from a random encoder, on
    ``data_root``."""
    cfg = Config.fromfile(osp.join(BENCH, LEARN[kind]))
    text = cfg.pretty_text.replace('data/tiny-learn', data_root)
    cfg = Config.fromstring(text, '.py')
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.log_level = 'WARNING'
    return cfg


@pytest.mark.slow
def test_tiny_upernet_learns(tiny_learn_data, tmp_path):
    """The tiny UperNet's held-out mIoU clears a floor that a pipeline that
    does not learn stays under."""
    metrics, _ = train_and_test(learn_config('seg', tiny_learn_data, tmp_path))
    assert float(metrics['mIoU']) > SEG_FLOOR, metrics


@pytest.mark.slow
def test_learning_floor_catches_a_wrong_label_mapping(tiny_learn_data,
                                                      tmp_path):
    """The same UperNet run trained on labels shifted by one class (ADE20K's
    0 = "other" not reduced, a classic mapping bug) stays under the floor."""
    cfg = learn_config('seg', tiny_learn_data, tmp_path)
    cfg.train_dataloader.dataset.reduce_zero_label = False
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.type == 'LoadAnnotations':
            step.reduce_zero_label = False
    metrics, _ = train_and_test(cfg)
    assert float(metrics['mIoU']) < SEG_FLOOR, metrics


def permute_train_categories(data_root, out_dir):
    """A copy of the tiny COCO train annotations with the five shape
    categories cycled (a converter's label-mapping bug); returns its path."""
    path = osp.join(data_root, 'coco', 'annotations',
                    'instances_train2017.json')
    with open(path, encoding='utf-8') as f:
        coco = json.load(f)
    ids = sorted({a['category_id'] for a in coco['annotations']})
    assert len(ids) == 5, ids
    cycle = dict(zip(ids, ids[1:] + ids[:1]))
    for ann in coco['annotations']:
        ann['category_id'] = cycle[ann['category_id']]
    out = osp.join(str(out_dir), 'instances_train2017_permuted.json')
    with open(out, 'w', encoding='utf-8') as f:
        json.dump(coco, f)
    return out


@pytest.mark.slow
def test_tiny_mask_rcnn_learns(tiny_learn_data, tmp_path):
    """The tiny ViT Mask R-CNN's held-out box AP clears a floor."""
    metrics, _ = train_and_test(learn_config('det', tiny_learn_data, tmp_path))
    print('det', metrics)
    assert float(metrics['coco/bbox_mAP']) > DET_FLOOR, metrics


@pytest.mark.slow
def test_detection_floor_catches_a_wrong_label_mapping(tiny_learn_data,
                                                       tmp_path):
    """The same run trained on annotations whose categories are permuted
    stays under the floor."""
    cfg = learn_config('det', tiny_learn_data, tmp_path)
    cfg.train_dataloader.dataset.ann_file = permute_train_categories(
        tiny_learn_data, tmp_path)
    metrics, _ = train_and_test(cfg)
    print('det, permuted', metrics)
    assert float(metrics['coco/bbox_mAP']) < DET_FLOOR, metrics
