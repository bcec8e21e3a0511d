"""Shared fixtures: a tiny SdAE (and RC-MAE) that runs in milliseconds on a
CPU."""
import copy
import uuid

import pytest
import torch
from mmengine.registry import init_default_scope

import mmsdae  # noqa: F401  (registers the modules)

# 32 px images, 8 px patches: N = 16 patches; mask 0.75 -> 4 visible,
# 12 masked -> 3 folds of 4 (the ViT-B/16 structure 49 / 147 = 3 x 49,
# scaled down).
TINY_MODEL = dict(
    type='SdAE',
    backbone=dict(
        type='SdAEViT',
        arch=dict(
            embed_dims=32, num_layers=2, num_heads=2,
            feedforward_channels=64),
        img_size=32,
        patch_size=8,
        mask_ratio=0.75,
        drop_path_rate=0.1),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=16,
        patch_size=8,
        in_chans=3,
        embed_dim=32,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_num_heads=2,
        mlp_ratio=2.,
        predict_feature_dim=32),
    head=dict(type='SdAEHead'),
    teacher_input=dict(mode='multi_fold', num_folds=3),
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True))


def _tiny_rcmae():
    """RC-MAE on the same images and encoder: pixel targets (192 values a
    patch), no drop path."""
    cfg = copy.deepcopy(TINY_MODEL)
    del cfg['teacher_input'], cfg['backbone']['drop_path_rate']
    del cfg['neck']['predict_feature_dim']
    cfg.update(
        type='RCMAE',
        head=dict(type='RCMAEHead', norm_pix=True, patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')))
    return cfg


TINY_RCMAE = _tiny_rcmae()


# --cfg-options that shrink a CPU demo config (procedural data) to a
# two-epoch, 8-image test run with a checkpoint per epoch
TINY_DEMO_RUN = {
    'train_dataloader.batch_size': 4,
    'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'train_dataloader.dataset.num_images': 8,
    'train_cfg.max_epochs': 2,
    'param_scheduler': [],
    'optim_wrapper.optimizer.lr': 1e-3,
    'default_hooks.checkpoint.interval': 1,
    'default_hooks.checkpoint.max_keep_ckpts': 3,
    'custom_hooks': [dict(type='TrainSummaryHook')],
    'log_level': 'WARNING',
}


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    init_default_scope('mmpretrain')


@pytest.fixture
def tiny_cfg():
    """A fresh copy of the tiny SdAE config (edit freely)."""
    return copy.deepcopy(TINY_MODEL)


@pytest.fixture
def build_tiny():
    """Build (and initialize) a tiny SdAE.

    Keyword overrides are merged into the sub-dicts (``backbone``, ``neck``,
    ``head``); ``teacher_input`` is replaced whole.
    """
    from mmpretrain.registry import MODELS

    def _build(**overrides):
        cfg = copy.deepcopy(TINY_MODEL)
        for key, value in overrides.items():
            if key != 'teacher_input' and isinstance(value, dict) \
                    and isinstance(cfg.get(key), dict):
                cfg[key].update(value)
            else:
                cfg[key] = value
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        model.init_weights()
        return model

    return _build


@pytest.fixture
def make_runner():
    """Build an MMEngine Runner that trains a model config on procedural
    32 px images: ``make_runner(work_dir, model_cfg, max_epochs, hooks,
    num_images=12, batch=4, **top_level_overrides)``; ``hooks`` is one
    custom hook config or a list of them."""
    from mmengine.runner import Runner

    def _make(work_dir, model_cfg, max_epochs, hooks, num_images=12,
              batch=4, **extra):
        cfg = dict(
            model=model_cfg,
            work_dir=str(work_dir),
            train_dataloader=dict(
                batch_size=batch,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='default_collate'),
                dataset=dict(
                    type='ProceduralShapesDataset',
                    num_images=num_images,
                    image_size=32,
                    pipeline=[dict(type='LoadImageFromFile'),
                              dict(type='PackInputs')])),
            optim_wrapper=dict(
                constructor='TrainableOptimWrapperConstructor',
                optimizer=dict(type='AdamW', lr=1e-3)),
            train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
            custom_hooks=hooks if isinstance(hooks, list) else [hooks],
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1),
                checkpoint=dict(type='CheckpointHook', interval=1)),
            default_scope='mmpretrain',
            randomness=dict(seed=0),
            log_level='WARNING',
            # a name of its own: runners made in the same second would share
            # MMEngine's message hub (and its logged history) otherwise
            experiment_name=f'test_{uuid.uuid4().hex}')
        cfg.update(extra)
        return Runner(**copy.deepcopy(cfg))

    return _make
