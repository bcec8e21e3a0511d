"""RC-MAE and MAE-baseline configs: Table 9's setting, appendix E.2's
architectures, and MAE baselines that differ from RC-MAE by the teacher
only."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DIR = osp.join(ROOT, 'configs', 'rcmae')
CONFIGS = sorted(glob.glob(osp.join(DIR, '*.py')))
RCMAE = [c for c in CONFIGS if osp.basename(c).startswith('rcmae')]
PAIRS = [(c, osp.join(DIR, 'mae' + osp.basename(c)[len('rcmae'):]))
         for c in RCMAE if osp.basename(c).startswith('rcmae_')]
# What the teacher adds to an MAE config (RC-MAE Sec. 5): the model type,
# the backbone able to encode given patches, the consistency head, the
# teacher options, and the EMA hook.
TEACHER_KEYS = {
    'model.type', 'model.backbone.type', 'model.head.type',
    'model.head.consistency_weight', 'model.teacher_mask',
    'model.feature_encoder', 'ema_hooks'
}


def flatten(node, prefix=''):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'custom_hooks':  # all but the EMA hook must match
                out['ema_hooks'] = [h for h in value if 'EMA' in h['type']]
                out['other_hooks'] = [
                    h for h in value if 'EMA' not in h['type']
                ]
            else:
                out.update(flatten(value, f'{prefix}{key}.'))
        return out
    return {prefix[:-1]: node}


def test_every_rcmae_config_has_its_mae_baseline():
    assert len(PAIRS) >= 5  # S, B 800 / 1600, L, tiny
    for _, mae in PAIRS:
        assert osp.isfile(mae), mae


@pytest.mark.parametrize('rcmae,mae', PAIRS,
                         ids=[osp.basename(p[0]) for p in PAIRS])
def test_mae_baseline_differs_only_by_the_teacher(rcmae, mae):
    rc = flatten(Config.fromfile(rcmae).to_dict())
    base = flatten(Config.fromfile(mae).to_dict())
    differ = {k for k in set(rc) | set(base) if rc.get(k) != base.get(k)}
    assert differ <= TEACHER_KEYS, differ - TEACHER_KEYS
    assert base['model.type'] == 'MAE' and rc['model.type'] == 'RCMAE'
    assert base['model.backbone.type'] == 'MAEViT'
    assert base['ema_hooks'] == [] and rc['ema_hooks']


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_its_model(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == cfg.model.type


def test_vit_b_matches_table_9():
    cfg = Config.fromfile(
        osp.join(DIR, 'rcmae_vit-base-p16_8xb512-coslr-1600e_in1k.py'))
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, tuple(opt.betas), opt.weight_decay) == ('AdamW',
                                                              (0.9, 0.95),
                                                              0.05)
    assert cfg.train_dataloader.batch_size * 8 == 4096
    assert opt.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.auto_scale_lr.base_batch_size == 4096
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.type, cosine.end) == (40, 'CosineAnnealingLR',
                                                     1600)
    assert cfg.model.backbone.mask_ratio == 0.75
    assert cfg.model.head.norm_pix is True
    assert cfg.model.head.consistency_weight == 1.0
    assert cfg.model.teacher_mask == 'same'
    assert cfg.model.feature_encoder == 'teacher'  # appendix F.1
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert crop.type == 'RandomResizedCrop'
    ema = [h for h in cfg.custom_hooks if h.type == 'TeacherEMAHook'][0]
    assert (ema.update_interval, ema.schedule) == ('iter', 'iter')  # Eq. 2


@pytest.mark.parametrize('name,encoder,decoder', [
    ('rcmae_vit-small-p16_8xb512-coslr-1600e_in1k.py', (12, 384), (4, 256)),
    ('rcmae_vit-base-p16_8xb512-coslr-1600e_in1k.py', (12, 768), (8, 512)),
    ('rcmae_vit-large-p16_8xb512-coslr-1600e_in1k.py', (24, 1024), (8, 512)),
])
def test_architectures_of_appendix_e2(name, encoder, decoder):
    model = MODELS.build(Config.fromfile(osp.join(DIR, name)).model)
    assert (model.backbone.num_layers,
            model.backbone.embed_dims) == encoder
    assert (len(model.neck.decoder_blocks),
            model.neck.decoder_embed.out_features) == decoder
    # the teacher is the whole student: encoder and decoder
    assert len(model.teacher_neck.decoder_blocks) == decoder[0]


def test_variants():
    def load(name):
        return Config.fromfile(osp.join(DIR, name))
    assert load('rcmae_vit-base-p16_8xb512-coslr-800e_in1k.py'
                ).param_scheduler[1].end == 800
    assert load('rcmae-mask80_vit-base-p16_8xb512-coslr-800e_in1k.py'
                ).model.backbone.mask_ratio == 0.8
    assert load('rcmae-mask80_vit-base-p16_8xb512-coslr-1600e_in1k.py'
                ).model.backbone.mask_ratio == 0.8
    assert load('rcmae-d_vit-base-p16_8xb512-coslr-1600e_in1k.py'
                ).model.teacher_mask == 'different'
