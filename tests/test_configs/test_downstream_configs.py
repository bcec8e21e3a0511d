"""Downstream configs: the papers' protocols are what the configs say, every
config builds its model, and layer-wise lr decay gives each block the
learning rate of the MAE / BEiT rule."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'configs', 'sdae', 'benchmarks')
CONFIGS = sorted(glob.glob(osp.join(BENCH, '*.py')))

FT_B = 'vit-base-p16_8xb256-coslr-100e_in1k.py'
FT_L = 'vit-large-p16_8xb256-coslr-50e_in1k.py'
LINEAR = 'vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'
DET = 'mask-rcnn_vit-base-p16_fpn_8xb4-1x_coco.py'
DET_RCMAE = 'mask-rcnn_vit-base-p16_fpn_lsj-8xb2-100e_coco.py'
SEG = 'upernet_vit-base-p16_8xb2-160k_ade20k-512x512.py'
TINY = {
    'cls': 'vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py',
    'linear': 'vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px.py',
    'det': 'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py',
    'seg': 'upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py',
}
GPUS = 8  # the papers' batch sizes are 8 GPUs x the per-GPU batch


def load(name):
    return Config.fromfile(osp.join(BENCH, name))


def build_model(cfg):
    """Build ``cfg.model`` in the config's scope, without pre-trained
    weights."""
    init_default_scope(cfg.default_scope)
    import mmsdae  # noqa: F401
    from mmengine.registry import MODELS
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def test_every_protocol_has_a_full_and_a_tiny_config():
    names = {osp.basename(c) for c in CONFIGS}
    assert {FT_B, FT_L, LINEAR, DET, DET_RCMAE, SEG} <= names
    assert set(TINY.values()) <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_loads_backbone_weights_by_prefix(path):
    cfg = Config.fromfile(path)
    assert 'mmsdae' in cfg.custom_imports.imports
    init = cfg.model.backbone.init_cfg
    # One converted file (backbone.* keys) serves every protocol.
    assert (init.type, init.prefix) == ('Pretrained', 'backbone.')
    assert cfg.model.backbone.type.endswith(('VisionTransformer', 'DenseViT'))
    if 'tiny' in path:  # the real dataset classes, on the generated folders
        for loader in ('train_dataloader', 'val_dataloader'):
            assert 'data/tiny' in cfg[loader].dataset.data_root
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_finetune_vit_b_matches_the_supplementary():
    # sdae_supplementary Sec. 1: batch 2048, 100 epochs, base lr 5e-4,
    # layer decay 0.65, drop path 0.1, 10 warm-up epochs, wd 0.05, AdamW.
    cfg = load(FT_B)
    assert cfg.train_dataloader.batch_size * GPUS == 2048
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW'
    assert opt.lr == pytest.approx(5e-4 * 2048 / 256)
    assert opt.weight_decay == 0.05
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65
    assert cfg.model.backbone.drop_path_rate == 0.1
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 10)
    assert (cosine.begin, cosine.end) == (10, 100)
    assert cfg.train_cfg.max_epochs == 100
    # MAE's recipe: mixup 0.8, cutmix 1.0, label smoothing 0.1,
    # RandAugment (m9, mstd 0.5), random erasing 0.25, mean-pooled head.
    augments = {a.type: a.alpha for a in cfg.model.train_cfg.augments}
    assert augments == {'Mixup': 0.8, 'CutMix': 1.0}
    assert cfg.model.head.loss.label_smooth_val == 0.1
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert steps['RandAugment'].magnitude_level == 9
    assert steps['RandAugment'].magnitude_std == 0.5
    assert steps['RandomErasing'].erase_prob == 0.25
    assert cfg.model.backbone.out_type == 'avg_featmap'


def test_finetune_vit_l_matches_the_supplementary():
    # ViT-L: 50 epochs, base lr 1e-3, layer decay 0.75, drop path 0.2,
    # 5 warm-up epochs.
    cfg = load(FT_L)
    assert cfg.model.backbone.arch == 'large'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-3 * 2048 / 256)
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.75
    assert cfg.model.backbone.drop_path_rate == 0.2
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 5 and cosine.end == 50
    assert cfg.train_cfg.max_epochs == 50
    assert cfg.model.head.in_channels == 1024


def test_linear_probe_follows_mae():
    # MAE: frozen encoder, BatchNorm without affine before the linear head,
    # LARS, base lr 0.1, batch 16384, 90 epochs, 10 warm-up epochs.
    cfg = load(LINEAR)
    assert cfg.train_dataloader.batch_size * GPUS == 16384
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.weight_decay) == ('LARS', 0.0)
    assert opt.lr == pytest.approx(0.1 * 16384 / 256)
    # MAE's LARS skips the trust ratio for 1-D parameters (the bias).
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['.bias'] == dict(
        lars_exclude=True)
    assert cfg.train_cfg.max_epochs == 90
    assert cfg.param_scheduler[0].end == 10
    model = build_model(cfg)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert model.neck.bn.affine is False
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'head.layers.head.weight', 'head.layers.head.bias'}


def test_detection_matches_the_cae_setting():
    # sdae_supplementary Sec. 1 (CAE setting): short side 480-800, long side
    # <= 1333, batch 32, AdamW lr 3e-4, layer decay 0.75, 12 epochs with lr
    # x0.1 at epochs 9 and 11, four equally spaced blocks, strides 4-32.
    cfg = load(DET)
    assert cfg.train_dataloader.batch_size * GPUS == 32
    # (the scales: test_reference_recipes.py)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr) == ('AdamW', 3e-4)
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.75
    assert cfg.train_cfg.max_epochs == 12
    step = cfg.param_scheduler[1]
    assert (step.type, step.milestones, step.gamma) == ('MultiStepLR', [9, 11],
                                                        0.1)
    assert tuple(cfg.model.backbone.out_indices) == (3, 5, 7, 11)
    assert cfg.model.neck[0].rescales == [4, 2, 1, 0.5]  # /16 -> /4../32


def test_detection_rcmae_protocol():
    # rcmae_main appendix E.4: LSJ, 100 epochs, batch 16, lr 4e-5, wd 0.1,
    # drop path 0.1, cosine decay after a linear warm-up.
    cfg = load(DET_RCMAE)
    assert cfg.train_dataloader.batch_size * GPUS == 16
    opt = cfg.optim_wrapper.optimizer
    assert (opt.lr, opt.weight_decay) == (4e-5, 0.1)
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert cfg.train_cfg.max_epochs == 100
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR',
                                                     'CosineAnnealingLR']
    jitter = [t for t in cfg.train_dataloader.dataset.pipeline
              if t.type == 'RandomResize'][0]
    assert tuple(jitter.ratio_range) == (0.1, 2.0)
    # "equally divide the ViT into four blocks"
    assert tuple(cfg.model.backbone.out_indices) == (2, 5, 8, 11)


def test_segmentation_matches_the_cae_setting():
    # sdae_supplementary Sec. 1: AdamW lr 4e-4, layer decay 0.65, batch 16,
    # 512 x 512, 160k iterations, weight decay 0.05; UperNet; single-scale
    # testing (the CAE-specific settings: test_reference_recipes.py).
    cfg = load(SEG)
    assert cfg.train_dataloader.batch_size * GPUS == 16
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 4e-4, 0.05)
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65
    assert cfg.train_cfg.max_iters == 160000
    assert tuple(cfg.crop_size) == (512, 512)
    assert cfg.model.decode_head.type == 'UPerHead'
    assert cfg.model.decode_head.num_classes == 150
    assert 'TestTimeAug' not in str(cfg.test_dataloader)  # single scale


def mae_lr_scale(rate, depth, num_blocks):
    """MAE ``param_groups_lrd``: ``rate ** (num_blocks + 1 - layer_id)``
    with layer_id 0 for the embeddings, ``i + 1`` for block ``i`` and
    ``num_blocks + 1`` for everything after the encoder (scale 1)."""
    return rate**(num_blocks + 1 - depth)


@pytest.mark.parametrize('name,rate,num_blocks', [
    (FT_B, 0.65, 12),
    (TINY['det'], 0.75, 4),
    (TINY['seg'], 0.65, 4),
])
def test_layer_decay_learning_rates(name, rate, num_blocks):
    cfg = load(name)
    model = build_model(cfg)
    optim_cfg = cfg.optim_wrapper.copy()
    wrapper = build_optim_wrapper(model, optim_cfg)
    base = cfg.optim_wrapper.optimizer.lr
    lrs = {g['param_name']: g['lr'] for g in wrapper.optimizer.param_groups}
    wds = {g['param_name']: g['weight_decay']
           for g in wrapper.optimizer.param_groups}
    mid = num_blocks // 2
    expected = {
        'backbone.patch_embed.projection.weight': mae_lr_scale(
            rate, 0, num_blocks),
        'backbone.layers.0.attn.qkv.weight': mae_lr_scale(
            rate, 1, num_blocks),
        f'backbone.layers.{mid}.ffn.layers.1.weight': mae_lr_scale(
            rate, mid + 1, num_blocks),
        f'backbone.layers.{num_blocks - 1}.attn.proj.weight': rate,
    }
    for key, scale in expected.items():
        assert lrs[key] == pytest.approx(base * scale), key
    # Everything after the backbone (head, neck, FPN, RPN, RoI heads, decode
    # head) trains at the full learning rate.
    after = [k for k in lrs if not k.startswith('backbone.')]
    assert after and all(lrs[k] == pytest.approx(base) for k in after)
    # No weight decay on norms, biases, class token, position embedding.
    assert wds['backbone.cls_token'] == 0
    if model.backbone.pos_embed.requires_grad:  # sin-cos tables are frozen
        assert wds['backbone.pos_embed'] == 0
    assert wds['backbone.layers.0.ln1.weight'] == 0
    assert wds['backbone.layers.0.attn.qkv.bias'] == 0
    assert wds['backbone.layers.0.attn.qkv.weight'] == pytest.approx(
        cfg.optim_wrapper.optimizer.weight_decay)


def test_layer_decay_constructor_refuses_a_backbone_without_depths():
    import mmsdae  # noqa: F401
    from mmsdae.engine.optimizers import ViTLayerDecayOptimWrapperConstructor

    class NoDepth(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = torch.nn.Linear(2, 2)

    ctor = ViTLayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
        dict(layer_decay_rate=0.65))
    with pytest.raises(TypeError, match='get_layer_depth'):
        ctor(NoDepth())
    with pytest.raises(ValueError, match='layer_decay_rate'):
        ViTLayerDecayOptimWrapperConstructor(
            dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
            dict(layer_decay_rate=1.5))


@pytest.mark.slow
@pytest.mark.parametrize('name,shape', [(DET, (480, 640)),
                                        (DET_RCMAE, (512, 512)),
                                        (SEG, (512, 512))])
def test_full_size_models_compute_a_loss(name, shape):
    """The ViT-B/16 detection and segmentation models of the real configs
    (not only the tiny ones) run a loss forward on one image."""
    from mmengine.model import revert_sync_batchnorm
    cfg = load(name)
    if name == DET_RCMAE:  # the global relative-position table follows the
        cfg.model.backbone.img_size = shape  # input (1024 needs > 16 GB)
    model = revert_sync_batchnorm(build_model(cfg))  # as a 1-process Runner
    height, width = shape
    batch = 1 if cfg.default_scope == 'mmdet' else 2  # UperNet's PPM: BN
    image = torch.rand(batch, 3, height, width) * 255
    if cfg.default_scope == 'mmdet':
        from mmdet.structures import DetDataSample
        from mmdet.structures.mask import BitmapMasks
        from mmengine.structures import InstanceData
        sample = DetDataSample(metainfo=dict(
            img_shape=shape, pad_shape=shape, ori_shape=shape,
            batch_input_shape=shape, scale_factor=(1., 1.)))
        masks = torch.zeros(1, height, width, dtype=torch.uint8)
        masks[0, 100:300, 100:260] = 1
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[100., 100., 260., 300.]]),
            labels=torch.tensor([3]),
            masks=BitmapMasks(masks.numpy(), height, width))
        feats = model.extract_feat(image)
        # strides 4, 8, 16, 32 (+ 64 from the FPN's extra level)
        assert [f.shape[-1] for f in feats] == [width // s
                                                for s in (4, 8, 16, 32, 64)]
    else:
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=dict(
            img_shape=shape, pad_shape=shape, ori_shape=shape))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 150, (1, height, width)))
    losses = model.loss(image, [sample] * batch)
    total = sum(
        sum(x.sum() for x in v) if isinstance(v, list) else v.sum()
        for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
