"""G2SD configs: the released generic-distillation setting (pengzhiliang/G2SD
GD.sh / main_distill.py defaults) and architectures (models_mae.py)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmsdae.models.utils.frozen_teacher import FrozenTeacher

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DIR = osp.join(ROOT, 'configs', 'g2sd')
CONFIGS = sorted(glob.glob(osp.join(DIR, 'g2sd_*.py')))


@pytest.fixture
def no_teacher_file(monkeypatch):
    """Build teachers without their (absent, large) checkpoint files: the
    teacher keeps its random initial weights. For architecture checks
    only."""
    monkeypatch.setattr(FrozenTeacher, '_load',
                        lambda self, prefixes, weights_only: {})


def test_there_are_configs():
    names = [osp.basename(c) for c in CONFIGS]
    assert 'g2sd_vit-small-p16_8xb512-coslr-300e_in1k.py' in names
    assert 'g2sd_vit-tiny-p16_8xb512-coslr-300e_in1k.py' in names
    assert 'g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py' in names


def test_vit_s_matches_the_released_setting():
    cfg = Config.fromfile(
        osp.join(DIR, 'g2sd_vit-small-p16_8xb512-coslr-300e_in1k.py'))
    assert cfg.default_scope == 'mmpretrain'
    assert 'mmsdae' in cfg.custom_imports.imports
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, tuple(opt.betas), opt.weight_decay) == ('AdamW',
                                                              (0.9, 0.95),
                                                              0.05)
    assert cfg.train_dataloader.batch_size * 8 == 4096
    assert opt.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.auto_scale_lr.base_batch_size == 4096
    assert cfg.optim_wrapper.constructor == 'TrainableOptimWrapperConstructor'
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 10)
    assert (cosine.type, cosine.begin, cosine.end,
            cosine.eta_min) == ('CosineAnnealingLR', 10, 300, 2.5e-6)
    assert cfg.train_cfg.max_epochs == 300
    model = cfg.model
    assert model.backbone.mask_ratio == 0.75
    assert model.backbone.drop_path_rate == 0.0
    assert model.target_block == 4
    assert (model.head.beta, model.head.masked_only) == (2.0, False)
    assert (model.head.in_channels, model.head.hidden_channels,
            model.head.out_channels) == (256, 512, 512)
    assert model.teacher.checkpoint == cfg.teacher_ckpt


@pytest.mark.parametrize('path', [
    osp.join(DIR, 'g2sd_vit-small-p16_8xb512-coslr-300e_in1k.py'),
    osp.join(DIR, 'g2sd_vit-tiny-p16_8xb512-coslr-300e_in1k.py'),
], ids=osp.basename)
def test_full_size_models_build(path, no_teacher_file):
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    teacher = model.teacher
    # teacher: MAE ViT-B/16 with its 512 x 8 decoder
    assert (teacher.backbone.embed_dims, len(teacher.backbone.layers)) == (
        768, 12)
    assert len(teacher.neck.decoder_blocks) == 8
    assert teacher.neck.decoder_embed.out_features == 512
    # same patches, 49 visible of 196
    assert model.backbone.num_patches == teacher.backbone.num_patches == 196
    assert model.backbone.num_visible == 49
    assert len(model.backbone.layers) == 12
    if 'small' in path:
        assert model.backbone.embed_dims == 384
        assert model.neck.decoder_embed.out_features == 256
        assert model.neck.decoder_blocks[0].attn.num_heads == 8
    else:
        assert model.backbone.embed_dims == 192
        assert model.neck.decoder_embed.out_features == 128
    assert len(model.neck.decoder_blocks) == 4
    assert model.head.fc2.out_features == 512


def test_tiny_config_inherits_the_demo_data_and_schedule():
    tiny = Config.fromfile(
        osp.join(DIR, 'g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py'))
    sdae = Config.fromfile(
        osp.join(ROOT, 'configs', 'sdae',
                 'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py'))
    assert tiny.train_dataloader == sdae.train_dataloader
    assert tiny.optim_wrapper == sdae.optim_wrapper
    assert tiny.param_scheduler == sdae.param_scheduler
    assert not any('EMA' in h.type for h in tiny.custom_hooks)
    teacher = Config.fromfile(
        osp.join(DIR, 'mae_vit-d192-p8_1xb32-10e_procedural-64px.py'))
    assert tiny.model.teacher.checkpoint.startswith(
        'work_dirs/mae_vit-d192-p8_1xb32-10e_procedural-64px/')
    assert tiny.model.teacher.backbone.arch == teacher.model.backbone.arch
    for key in ('embed_dim', 'decoder_embed_dim', 'decoder_depth',
                'decoder_num_heads'):
        assert tiny.model.teacher.neck[key] == teacher.model.neck[key]
