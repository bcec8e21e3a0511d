"""Hybrid Distill configs: the ViT-B setting (MAE + DeiT, MAE + CLIP, and
the masking-off variant of appendix Table A5) and the tiny CPU demo."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmsdae.models.utils.frozen_teacher import FrozenTeacher

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DIR = osp.join(ROOT, 'configs', 'hybrid_distill')
DEIT = osp.join(
    DIR, 'hybrid-distill_vit-base-p16_mae-deit_8xb128-accum2-coslr-300e_'
    'in1k.py')
CLIP = osp.join(
    DIR, 'hybrid-distill_vit-base-p16_mae-clip_8xb128-accum2-coslr-300e_'
    'in1k.py')
DINO = osp.join(
    DIR, 'hybrid-distill_vit-base-p16_mae-dino_8xb128-accum2-coslr-300e_'
    'in1k.py')
NOMASK = osp.join(
    DIR, 'hybrid-distill_vit-base-p16_mae-deit-nomask_8xb128-accum2-coslr-'
    '300e_in1k.py')
NOMASK_100E = osp.join(
    DIR, 'hybrid-distill_vit-base-p16_mae-deit-nomask_8xb128-accum2-coslr-'
    '100e_in1k.py')
TINY = osp.join(DIR, 'hybrid-distill_vit-tiny-p8_1xb32-10e_procedural-64px.py')


@pytest.fixture
def no_teacher_file(monkeypatch):
    """Build teachers without their (absent, large) checkpoint files: the
    teachers keep random weights. For architecture checks only."""
    monkeypatch.setattr(FrozenTeacher, '_load',
                        lambda self, prefixes, weights_only: {})


def test_the_configs_are_there():
    assert sorted(glob.glob(osp.join(DIR, '*.py'))) == sorted(
        [DEIT, CLIP, DINO, NOMASK, NOMASK_100E, TINY])


def test_vit_b_setting():
    cfg = Config.fromfile(DEIT)
    assert cfg.default_scope == 'mmpretrain'
    assert 'mmsdae' in cfg.custom_imports.imports
    model = cfg.model
    assert model.type == 'HybridDistill'
    assert model.alpha == 1.0  # appendix Table A4
    assert (model.backbone.arch, model.backbone.patch_size) == ('b', 16)
    assert model.teacher_c.backbone.arch == 'deit-base'
    assert model.teacher_c.backbone.out_type == 'raw'
    assert model.teacher_m.backbone.arch == 'b'
    assert model.teacher_c.checkpoint == cfg.teacher_c_ckpt
    assert model.teacher_m.checkpoint == cfg.teacher_m_ckpt
    assert cfg.train_cfg.max_epochs == 300
    opt = cfg.optim_wrapper.optimizer
    batch = 8 * cfg.train_dataloader.batch_size * \
        cfg.optim_wrapper.accumulative_counts
    assert batch == 2048
    assert opt.lr == pytest.approx(1.5e-4 * batch / 256)
    assert (opt.type, tuple(opt.betas), opt.weight_decay) == ('AdamW',
                                                              (0.9, 0.95),
                                                              0.05)
    assert cfg.optim_wrapper.constructor == 'TrainableOptimWrapperConstructor'
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.begin, cosine.end) == (10, 10, 300)


def test_variants():
    nomask = Config.fromfile(NOMASK)
    assert nomask.model.token_masking is None  # Table A5, masking off
    assert nomask.model.teacher_c == Config.fromfile(DEIT).model.teacher_c
    clip = Config.fromfile(CLIP)
    t_c = clip.model.teacher_c
    assert t_c.backbone.pre_norm is True
    assert t_c.backbone.layer_cfgs.act_cfg.type == 'QuickGELU'
    assert t_c.prefixes.backbone == 'vision_backbone.'
    assert clip.model.teacher_c_norm.mean[0] == pytest.approx(122.7709,
                                                              abs=1e-3)
    assert clip.model.data_preprocessor.type == 'SelfSupDataPreprocessor'
    dino = Config.fromfile(DINO)  # Table A3: DINO ViT-B/16 as T_c
    assert dino.model.teacher_c.backbone.arch == 'b'
    assert 'dino_vitbase16' in dino.model.teacher_c.checkpoint
    assert dino.model.teacher_m == Config.fromfile(DEIT).model.teacher_m
    assert 'teacher_c_norm' not in dino.model  # ImageNet mean / std
    tiny = Config.fromfile(TINY)
    assert tiny.model.backbone.arch.embed_dims == 96
    assert tiny.train_cfg.max_epochs == 10


@pytest.mark.slow
@pytest.mark.parametrize('path', [DEIT, CLIP], ids=osp.basename)
def test_vit_b_models_build(path, no_teacher_file):
    model = MODELS.build(Config.fromfile(path).model)
    assert len(model.backbone.layers) == 12
    assert model.backbone.num_patches == 196
    for name in ('teacher_c', 'teacher_m'):
        encoder = getattr(model, name).backbone
        assert (encoder.embed_dims, len(encoder.layers)) == (768, 12)
    assert model.head.proj.in_features == model.head.proj.out_features == 768
    # the defaults the config relies on (configs/hybrid_distill/README.md)
    assert model.relation_layers == model.teacher_relation_layers == list(
        range(11))
    assert model.teacher_m_input == 'visible'
    assert (model.head.distance, model.head.beta, model.head.target_norm,
            model.relation_head.distance,
            model.relation_head.head_reduce) == ('smooth_l1', 2.0, True,
                                                 'kl', 'none')
    # 196 patches: 0, 49, 98 masked over the three thirds of 300 epochs,
    # scored by T_c's last block
    masking = model.token_masking
    assert (masking.score_teacher, masking.score_layer) == ('teacher_c', -1)
    assert [masking.num_masked(196, e / 300)
            for e in (0, 100, 200)] == [0, 49, 98]
