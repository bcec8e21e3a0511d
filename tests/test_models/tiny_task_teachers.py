"""Tiny task teachers for G2SD's specific distillation (issue 8, parts 3
and 5): the tiny configs of configs/g2sd/specific with their teacher built
at random, saved to a temporary MMEngine checkpoint and loaded from there,
as a fine-tuned teacher file would be. Imported by test_g2sd_specific.py
and test_g2sd_specific_training.py (not a conftest.py, which would shadow
tests/conftest.py)."""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SPECIFIC = osp.join(ROOT, 'configs', 'g2sd', 'specific')
TINY = {
    'cls': 'vit-tiny-p8-distilled_1xb16-coslr-2e_tiny-in1k-64px.py',
    'det': 'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py',
    'seg': 'upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py',
}
SCOPES = {'cls': 'mmpretrain', 'det': 'mmdet', 'seg': 'mmseg'}


def registry(kind):
    """The MODELS registry of the task's scope (importing the mmsdae
    models registered there)."""
    if kind == 'det':
        import mmsdae.models.detectors  # noqa: F401
        from mmdet.registry import MODELS
    elif kind == 'seg':
        import mmsdae.models.segmentors  # noqa: F401
        from mmseg.registry import MODELS
    else:
        import mmsdae  # noqa: F401
        from mmpretrain.registry import MODELS
    return MODELS


def teacher_model_cfg(kind, cfg):
    """The config of the teacher as the model it was fine-tuned as."""
    teacher = cfg.model.teacher
    if kind == 'cls':
        return dict(
            type='ImageClassifier',
            backbone=copy.deepcopy(teacher.backbone),
            head=copy.deepcopy(teacher.head))
    return copy.deepcopy(teacher.model)


def save_tiny_teacher(kind, cfg, path, seed=0):
    """Build the teacher of ``cfg`` at random (every trainable tensor
    perturbed, so that norms are not 1 / 0 and a key left at its initial
    value shows),
    save it as an MMEngine checkpoint at ``path``; returns the model."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(SCOPES[kind]):
        model = registry(kind).build(teacher_model_cfg(kind, cfg))
    model.init_weights()
    # Frozen tensors (DenseViT's sin-cos table) keep their value, as in a
    # trained teacher's file.
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point() and name not in frozen:
                value.add_(0.02 * torch.randn_like(value))
    model.eval()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(path))
    return model


def tiny_specific_config(kind, tmp_path, data_root=None):
    """The tiny config of ``kind`` with a random teacher saved under
    ``tmp_path``, the student initialized at random, and the data under
    ``data_root`` (the folder that holds coco/, ade/ and imagenet/)."""
    cfg = Config.fromfile(osp.join(SPECIFIC, TINY[kind]))
    path = osp.join(str(tmp_path), f'tiny_{kind}_teacher.pth')
    save_tiny_teacher(kind, cfg, path)
    cfg.model.teacher.checkpoint = path
    cfg.model.backbone.init_cfg = None
    if data_root is not None:
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            dataset = cfg[loader].dataset
            dataset.data_root = dataset.data_root.replace(
                'data/tiny', data_root)
        for evaluator in ('val_evaluator', 'test_evaluator'):
            if 'ann_file' in cfg[evaluator]:
                cfg[evaluator].ann_file = cfg[evaluator].ann_file.replace(
                    'data/tiny', data_root)
    return cfg


def build_tiny_student(kind, cfg):
    """Build (and initialize) the distillation model of ``cfg``."""
    model_cfg = copy.deepcopy(cfg.model)
    if kind == 'cls':
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    with DefaultScope.overwrite_default_scope(SCOPES[kind]):
        model = registry(kind).build(model_cfg)
    model.init_weights()
    return model
