"""A tiny MAE teacher (saved to a file) and a tiny G2SD built on it: the
fixtures of test_frozen_teacher.py and test_g2sd.py (imported there; not
a conftest.py, which would shadow tests/conftest.py for `from conftest
import ...`)."""
import copy

import pytest
import torch

# 32 px images, 8 px patches: 16 patches, 4 visible at mask 0.75. The
# teacher decoder has 8 blocks, so the G2SD target is block 4 of 8 as in
# the paper, at a size that runs in milliseconds.
TEACHER_ENCODER = dict(
    arch=dict(
        embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
    img_size=32,
    patch_size=8,
    mask_ratio=0.75)
TEACHER_DECODER = dict(
    type='MAEPretrainDecoder',
    num_patches=16,
    patch_size=8,
    in_chans=3,
    embed_dim=32,
    decoder_embed_dim=16,
    decoder_depth=8,
    decoder_num_heads=2,
    mlp_ratio=2.)
TINY_MAE = dict(
    type='MAE',
    backbone=dict(type='MAEViT', **TEACHER_ENCODER),
    neck=TEACHER_DECODER,
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=8,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))


def teacher_cfg(checkpoint, **overrides):
    """The FrozenTeacher config of the tiny MAE."""
    cfg = dict(
        type='FrozenTeacher',
        checkpoint=str(checkpoint),
        backbone=dict(type='SdAEViT', **copy.deepcopy(TEACHER_ENCODER)),
        neck=copy.deepcopy(TEACHER_DECODER))
    cfg.update(overrides)
    return cfg


def g2sd_cfg(checkpoint, **overrides):
    """A tiny G2SD (16-wide student, 12 x 2 decoder) on the tiny MAE."""
    cfg = dict(
        type='G2SD',
        backbone=dict(
            type='SdAEViT',
            arch=dict(
                embed_dims=16, num_layers=2, num_heads=2,
                feedforward_channels=32),
            img_size=32,
            patch_size=8,
            mask_ratio=0.75),
        neck=dict(
            type='MAEFeatureDecoder',
            num_patches=16,
            embed_dim=16,
            decoder_embed_dim=12,
            decoder_depth=2,
            decoder_num_heads=2,
            mlp_ratio=2.),
        head=dict(
            type='G2SDHead', in_channels=12, hidden_channels=24,
            out_channels=16),
        teacher=teacher_cfg(checkpoint),
        target_block=4,
        data_preprocessor=dict(
            type='SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True),
        init_cfg=[
            dict(type='Xavier', layer='Linear', distribution='uniform'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ])
    cfg.update(overrides)
    return cfg


@pytest.fixture
def tiny_mae(tmp_path):
    """A randomly initialized tiny mmpretrain MAE, every tensor perturbed
    (norms are not 1 / 0, so a wrong key mapping shows), saved as an
    MMEngine checkpoint: returns ``(model, path)``."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    mae = MODELS.build(copy.deepcopy(TINY_MAE))
    mae.init_weights()
    with torch.no_grad():
        for value in mae.state_dict().values():
            value.add_(0.05 * torch.randn_like(value))
    mae.eval()
    path = tmp_path / 'tiny_mae.pth'
    torch.save(dict(state_dict=mae.state_dict(), meta=dict()), path)
    return mae, path


@pytest.fixture
def build_g2sd(tiny_mae):
    """Build (and initialize) a tiny G2SD on ``tiny_mae``; keyword
    overrides replace top-level keys of the config."""
    from mmpretrain.registry import MODELS
    _, path = tiny_mae

    def _build(**overrides):
        torch.manual_seed(1)
        model = MODELS.build(g2sd_cfg(path, **overrides))
        model.init_weights()
        return model

    return _build
