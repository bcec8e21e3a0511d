"""G2SD specific-distillation configs (issue 8, part 3): the settings of the
supplementary (Sec. 1, Table 1) and the released code, the full-size
models build (ViT-S students, ViT-B teachers), and each tiny teacher
config trains a model whose checkpoint the tiny distillation config loads
as its teacher (the CPU recipe of the README)."""
import copy
import logging
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmsdae.models.utils.frozen_teacher import FrozenTeacher

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)),
                            'test_models'))
from tiny_task_teachers import SPECIFIC, TINY, build_tiny_student  # noqa

FULL = {
    'cls': 'vit-small-p16-distilled_8xb128-coslr-200e_in1k.py',
    'det': 'mask-rcnn_vit-small-p16_fpn_lsj-8xb8-100e_coco.py',
    'seg': 'upernet_vit-small-p16_8xb4-160k_ade20k-512x512.py',
}
TEACHERS = {
    'cls': 'vit-d192-p8_1xb16-coslr-2e_tiny-in1k-64px.py',
    'det': 'mask-rcnn_vit-d192-p8_fpn_1xb2-1e_tiny-coco-128px.py',
    'seg': 'upernet_vit-d192-p8_1xb2-8i_tiny-ade20k-64px.py',
}


def load(name):
    return Config.fromfile(osp.join(SPECIFIC, name))


@pytest.fixture(autouse=True)
def _quiet_init_logs():
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def test_classification_follows_supplementary_table_1():
    cfg = load(FULL['cls'])
    assert cfg.train_cfg.max_epochs == 200
    assert cfg.train_dataloader.batch_size * 8 == 1024
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, tuple(opt.betas), opt.weight_decay) == (
        'AdamW', (0.9, 0.999), 0.05)
    assert opt.lr == pytest.approx(1e-3 * 1024 / 256)  # blr per 256 images
    assert cfg.auto_scale_lr.base_batch_size == 1024
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert paramwise.layer_decay_rate == 0.75
    assert paramwise.custom_keys['.dist_token'].decay_mult == 0.0
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 5)
    assert (cosine.type, cosine.end, cosine.eta_min) == ('CosineAnnealingLR',
                                                         200, 1e-6)
    model = cfg.model
    assert model.type == 'DistillImageClassifier'
    assert model.backbone.type == 'DistilledViT'
    assert model.backbone.arch == 'deit-small'
    assert model.backbone.drop_path_rate == 0.0
    assert model.head.distill_weight == 0.5
    assert model.head.loss.label_smooth_val == 0.1
    mixup, cutmix = model.train_cfg.augments
    assert (mixup.type, mixup.alpha, cutmix.type, cutmix.alpha) == (
        'Mixup', 0.8, 'CutMix', 1.0)
    steps = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandAugment' in steps and 'RandomErasing' in steps
    teacher = model.teacher
    assert teacher.backbone.arch == 'base'
    assert teacher.backbone.out_type == 'avg_featmap'  # MAE global pool
    assert teacher.checkpoint == cfg.teacher_ckpt


def test_detection_follows_the_supplementary():
    cfg = load(FULL['det'])
    model = cfg.model
    assert model.type == 'G2SDMaskRCNN'
    assert (model.fpn_weight, model.head_weight, model.warmup_iters) == (
        0.001, 0.1, 500)
    assert 'mmsdae.models.detectors' in cfg.custom_imports.imports
    assert cfg.train_dataloader.batch_size * 8 == 64
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.7
    assert model.backbone.arch == 'deit-small'
    assert model.backbone.drop_path_rate == 0.1
    assert model.neck[0].embed_dim == 384
    assert model.neck[1].in_channels == [384] * 4
    teacher = model.teacher.model
    assert teacher.type == 'MaskRCNN' and teacher.backbone.arch == 'base'
    assert teacher.neck[1].in_channels == [768] * 4
    assert cfg.train_cfg.max_epochs == 100


def test_segmentation_follows_the_supplementary():
    cfg = load(FULL['seg'])
    model = cfg.model
    assert model.type == 'G2SDEncoderDecoder'
    assert (model.cwd_tau, model.cwd_weight) == (1.0, 3.0)
    assert 'mmsdae.models.segmentors' in cfg.custom_imports.imports
    assert cfg.train_dataloader.batch_size * 8 == 32
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.75
    assert model.backbone.arch == 'deit-small'
    assert model.backbone.drop_path_rate == 0.1
    assert model.decode_head.in_channels == [384] * 4
    teacher = model.teacher.model
    assert teacher.type == 'EncoderDecoder'
    assert teacher.backbone.arch == 'base'
    assert teacher.decode_head.num_classes == model.decode_head.num_classes


@pytest.mark.parametrize('kind', ['cls', 'det', 'seg'])
def test_full_size_models_build(kind, monkeypatch):
    """ViT-S student, ViT-B teacher (its file absent here: the teacher
    keeps random weights; nothing is initialized, only built: init_weights
    of the full-size models took half of the test's 5-7 s)."""
    from mmengine.registry import DefaultScope
    from tiny_task_teachers import SCOPES, registry
    monkeypatch.setattr(FrozenTeacher, '_load',
                        lambda self, prefixes, weights_only: {})
    cfg = load(FULL[kind])
    cfg.model.backbone.init_cfg = None
    model_cfg = copy.deepcopy(cfg.model)
    if kind == 'cls':
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    with DefaultScope.overwrite_default_scope(SCOPES[kind]):
        model = registry(kind).build(model_cfg)
    assert model.backbone.embed_dims == 384
    assert len(model.backbone.layers) == 12
    teacher = model.teacher
    backbone = teacher.backbone if kind == 'cls' else teacher.model.backbone
    assert backbone.embed_dims == 768
    assert not any(p.requires_grad for p in teacher.parameters())
    if kind == 'det':
        assert len(model.distill_adapters) == 5
        conv = model.distill_adapters[0]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (
            256, 256, (3, 3))


@pytest.mark.parametrize('kind', ['cls', 'det', 'seg'])
def test_tiny_teacher_config_trains_the_teacher_the_distiller_loads(
        kind, tmp_path):
    """A checkpoint of the model of teachers/<config> is a valid teacher
    file for the tiny distillation config: every tensor found, none
    left over."""
    from mmengine.registry import DefaultScope
    from tiny_task_teachers import SCOPES, registry
    teacher_cfg = load(osp.join('teachers', TEACHERS[kind]))
    model_cfg = copy.deepcopy(teacher_cfg.model)
    model_cfg.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(SCOPES[kind]):
        teacher = registry(kind).build(model_cfg)
    path = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)

    cfg = load(TINY[kind])
    assert cfg.model.teacher.checkpoint.startswith(
        'work_dirs/' + osp.splitext(TEACHERS[kind])[0] + '/')
    cfg.model.teacher.checkpoint = str(path)
    cfg.model.backbone.init_cfg = None
    student = build_tiny_student(kind, cfg)
    assert student.teacher.load_report['unused'] == []
    assert student.backbone.embed_dims == 96

