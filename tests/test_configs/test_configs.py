"""Every config parses and builds; the paper recipe is what the configs say."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'sdae', '*.py')))


def test_there_are_configs():
    names = [osp.basename(c) for c in CONFIGS]
    assert 'sdae_vit-base-p16_8xb96-coslr-300e_in1k.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_its_model(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert 'mmsdae' in cfg.custom_imports.imports
    model = MODELS.build(cfg.model)
    assert model.teacher_input.check(model.backbone.num_patches,
                                     model.backbone.num_masked) is None


def test_vit_b_300e_matches_the_supplementary_recipe():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/sdae/sdae_vit-base-p16_8xb96-coslr-300e_in1k.py'))
    # supplementary Sec. 1: AdamW, lr 8e-4 at batch 768, 60 warm-up epochs,
    # cosine decay, weight decay 0.05, drop path 0.25 (encoder only),
    # momentum 0.96 -> 0.99 per epoch, mask 0.75, 3 folds of 49, 300 epochs
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 8e-4, 0.05)
    assert tuple(opt.betas) == (0.9, 0.95)
    assert cfg.train_dataloader.batch_size * 8 == 768
    assert cfg.auto_scale_lr.base_batch_size == 768
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 60)
    assert (cosine.type, cosine.begin, cosine.end) == ('CosineAnnealingLR',
                                                       60, 300)
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.model.backbone.drop_path_rate == 0.25
    assert cfg.model.backbone.mask_ratio == 0.75
    assert cfg.model.teacher_input == dict(mode='multi_fold', num_folds=3)
    assert cfg.model.head.norm_target is True
    ema = [h for h in cfg.custom_hooks if h.type == 'SdAETeacherEMAHook'][0]
    assert (ema.momentum, ema.end_momentum, ema.update_interval) == (
        0.96, 0.99, 'epoch')
    model = MODELS.build(cfg.model)
    assert (model.backbone.num_visible, model.backbone.num_masked) == (49, 147)
    assert model.neck.decoder_pred.out_features == 768


def test_variants():
    base = osp.join(ROOT, 'configs/sdae/')
    long = Config.fromfile(base + 'sdae_vit-base-p16_8xb96-coslr-800e_in1k.py')
    assert long.train_cfg.max_epochs == 800
    assert long.param_scheduler[1].end == 800
    large = Config.fromfile(
        base + 'sdae_vit-large-p16_8xb96-coslr-300e_in1k.py')
    assert large.model.backbone.arch == 'l'
    assert large.model.neck.predict_feature_dim == 1024


def test_metafiles_list_existing_configs():
    import yaml
    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))
    for metafile in index['Import']:
        meta = yaml.safe_load(open(osp.join(ROOT, metafile)))
        for model in meta['Models']:
            assert osp.isfile(osp.join(ROOT, model['Config'])), model['Name']
            assert model['Name'] == osp.splitext(
                osp.basename(model['Config']))[0]
