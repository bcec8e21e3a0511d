"""tools/train.py's start-up checks: a bad pretrained file or data folder is
reported with the config key, the path and the fix, before any Runner."""
import pytest
import torch
from mmengine.config import Config

from mmsdae.utils.preflight import (PreflightError, check_data_roots,
                                    check_pretrained_checkpoints,
                                    check_unknown_keys)


def cfg_with_checkpoint(path, prefix='backbone.'):
    return Config(dict(model=dict(
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            init_cfg=dict(type='Pretrained', checkpoint=path,
                          prefix=prefix)))))


def test_a_converted_encoder_passes(tmp_path):
    path = str(tmp_path / 'enc.pth')
    torch.save(dict(state_dict={'backbone.cls_token': torch.zeros(1)}), path)
    cfg = cfg_with_checkpoint(path)
    assert check_pretrained_checkpoints(cfg, check_backbone=False) == [path]


@pytest.mark.parametrize('checkpoint,match', [
    ('', 'checkpoint is empty'),
    ('missing.pth', 'does not exist'),
])
def test_empty_or_missing_checkpoint(checkpoint, match):
    with pytest.raises(PreflightError, match=match) as err:
        check_pretrained_checkpoints(cfg_with_checkpoint(checkpoint))
    msg = str(err.value)
    assert 'model.backbone.init_cfg.checkpoint' in msg
    assert 'sdae_to_vit.py' in msg and 'init_cfg=None' in msg


def test_checkpoint_without_the_prefix_asks_for_conversion(tmp_path):
    path = str(tmp_path / 'timm.pth')
    torch.save(dict(model={'blocks.0.attn.qkv.weight': torch.zeros(1)}), path)
    with pytest.raises(PreflightError, match='no "backbone.\\*" keys') as err:
        check_pretrained_checkpoints(cfg_with_checkpoint(path))
    assert 'blocks' in str(err.value) and 'sdae_to_vit.py' in str(err.value)


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save(dict(state_dict={'backbone.x': torch.zeros(100)}), str(path))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(PreflightError, match='corrupt'):
        check_pretrained_checkpoints(cfg_with_checkpoint(str(path)))


def test_no_pretrained_init_is_fine():
    cfg = Config(dict(model=dict(backbone=dict(init_cfg=None))))
    assert check_pretrained_checkpoints(cfg) == []


def test_missing_data_roots(tmp_path):
    ok = str(tmp_path)
    (tmp_path / 'img.png').write_bytes(b'')  # not empty (contents unread)
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(data_root=ok)),
        val_dataloader=dict(dataset=dict(
            data_root=f'{tmp_path}/data/tiny/coco/'))))
    with pytest.raises(PreflightError) as err:
        check_data_roots(cfg)
    assert 'val_dataloader.dataset.data_root' in str(err.value)
    assert f'make_tiny_data.py --out {tmp_path}/data/tiny' in str(err.value)
    cfg.val_dataloader.dataset.data_root = f'{tmp_path}/data/coco/'
    with pytest.raises(PreflightError, match='README'):
        check_data_roots(cfg)
    cfg.val_dataloader.dataset.data_root = ''  # procedural: nothing to check
    assert check_data_roots(cfg) == [ok]


BENCH = 'configs/sdae/benchmarks/'


def vit_state(embed_dims=96, num_layers=4, img_size=64, final_norm=True):
    """``backbone.*`` weights of an mmpretrain ViT (8 px patches)."""
    from mmpretrain.models import VisionTransformer
    vit = VisionTransformer(
        arch=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=3,
                  feedforward_channels=4 * embed_dims),
        img_size=img_size, patch_size=8, final_norm=final_norm)
    return {'backbone.' + k: v for k, v in vit.state_dict().items()}


def downstream_cfg(name, tmp_path, state):
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, BENCH, name))
    path = str(tmp_path / 'encoder.pth')
    torch.save(dict(state_dict=state), path)
    cfg.model.backbone.init_cfg.checkpoint = path
    return cfg


@pytest.mark.parametrize('name', [
    'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py',
    'vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px.py',
])
def test_an_encoder_of_the_right_arch_passes(name, tmp_path):
    # 128 px weights (16 x 16 grid) for a 64 px backbone: resized on load.
    cfg = downstream_cfg(name, tmp_path, vit_state(img_size=128))
    assert len(check_pretrained_checkpoints(cfg)) == 1


def test_an_encoder_of_another_width_is_refused(tmp_path):
    cfg = downstream_cfg('upernet_vit-tiny-p8_1xb2-8i_tiny-ade20k-64px.py',
                         tmp_path, vit_state(embed_dims=48))
    with pytest.raises(PreflightError, match='does not fit') as err:
        check_pretrained_checkpoints(cfg)
    assert 'width 48' in str(err.value) and 'width 96' in str(err.value)


def test_an_encoder_with_fewer_blocks_is_refused(tmp_path):
    cfg = downstream_cfg('vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py',
                         tmp_path, vit_state(num_layers=2))
    with pytest.raises(PreflightError, match='layers.2'):
        check_pretrained_checkpoints(cfg)


def test_linear_probe_needs_the_frozen_final_norm(tmp_path):
    # A global-pool fine-tuned MAE file has no final norm (ln1): fine for
    # fine-tuning (ln1 unused / trained), not for a frozen linear probe.
    state = vit_state(final_norm=False)
    cfg = downstream_cfg('vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px.py',
                         tmp_path, state)
    with pytest.raises(PreflightError, match='ln1.weight'):
        check_pretrained_checkpoints(cfg)
    cfg = downstream_cfg('vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py',
                         tmp_path, state)
    assert len(check_pretrained_checkpoints(cfg)) == 1


def loader_cfg(root, **dataset):
    return Config(dict(train_dataloader=dict(dataset=dict(
        type='ProceduralShapesDataset', data_root=str(root), **dataset))))


def test_empty_image_folder_names_it_and_the_layout(tmp_path):
    (tmp_path / 'train' / 'n01440764').mkdir(parents=True)
    cfg = loader_cfg(tmp_path, data_prefix='train')
    with pytest.raises(PreflightError) as err:
        check_data_roots(cfg)
    msg = str(err.value)
    assert f"image folder '{tmp_path}/train' holds no image" in msg
    assert f'{tmp_path}/train/<class>/<image>.JPEG' in msg
    assert msg.startswith('train_dataloader.dataset:')
    (tmp_path / 'train' / 'n01440764' / 'a.JPEG').write_bytes(b'')
    assert check_data_roots(cfg) == [str(tmp_path)]
    cfg.train_dataloader.dataset.data_prefix = 'val'
    with pytest.raises(PreflightError, match='val.* does not exist'):
        check_data_roots(cfg)


def test_empty_or_missing_annotation_file(tmp_path):
    cfg = loader_cfg(tmp_path, ann_file='meta/train.txt')
    with pytest.raises(PreflightError, match='meta/train.txt.* does not'):
        check_data_roots(cfg)
    (tmp_path / 'meta').mkdir()
    (tmp_path / 'meta' / 'train.txt').write_text('\n\n')
    with pytest.raises(PreflightError, match='is empty; it should list'):
        check_data_roots(cfg)
    (tmp_path / 'meta' / 'train.txt').write_text('n0/a.JPEG 0\n')
    assert check_data_roots(cfg) == [str(tmp_path)]


SDAE_TINY = 'configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py'


def repo_config(path):
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return Config.fromfile(osp.join(root, path))


@pytest.mark.parametrize('option,problem', [
    ({'model.teacher_inptu': {}},
     "model: unknown key 'teacher_inptu' for SdAE; did you mean "
     "'teacher_input'?"),
    ({'model.teacher_input.mode': 'multifold'},
     "model.teacher_input: unknown mode 'multifold'; did you mean "
     "'multi_fold'?"),
    ({'model.teacher_input.num_fold': 3},
     "model.teacher_input: unknown key 'num_fold' in teacher_input; did you "
     "mean 'num_folds'?"),
    # **kwargs passed on to the base class: the base's keys count too.
    ({'model.backbone.mask_ration': 0.5},
     "model.backbone: unknown key 'mask_ration' for SdAEViT; did you mean "
     "'mask_ratio'?"),
    ({'custom_hooks.0.momentun': 0.9},
     "custom_hooks[0]: unknown key 'momentun' for SdAETeacherEMAHook; did "
     "you mean 'momentum'?"),
    ({'default_hooks.nonfinite_loss.acton': 'skip'},
     "default_hooks.nonfinite_loss: unknown key 'acton' for "
     "NonFiniteLossHook; did you mean 'action'?"),
    ({'train_dataloader.dataset.num_image': 8},
     "train_dataloader.dataset: unknown key 'num_image' for "
     "ProceduralShapesDataset; did you mean 'num_images'?"),
    ({'train_dataloader.dataset.pipeline.0.on_eror': 'raise'},
     "train_dataloader.dataset.pipeline[0]: unknown key 'on_eror' for "
     "SafeLoadImageFromFile; did you mean 'on_error'?"),
    ({'optim_wrapper.optimizer.weight_deacy': 0.1},
     "optim_wrapper.optimizer: unknown key 'weight_deacy' for AdamW; did "
     "you mean 'weight_decay'?"),
])
def test_unknown_key_is_named_with_a_suggestion(option, problem):
    cfg = repo_config(SDAE_TINY)
    cfg.merge_from_dict(option)
    with pytest.raises(PreflightError) as err:
        check_unknown_keys(cfg)
    assert f'  {problem}\n' in str(err.value)
    assert 'Rename or remove' in str(err.value)


@pytest.mark.parametrize('option,problem', [
    ({'model.token_masking.score_layr': -1},
     "model.token_masking: unknown key 'score_layr' in token_masking; did "
     "you mean 'score_layer'?"),
    ({'model.token_masking.score_teacher': 'teacher-c'},
     "model.token_masking: unknown score_teacher 'teacher-c'; did you mean "
     "'teacher_c'?"),
])
def test_untyped_option_dicts_of_hybrid_distill(option, problem):
    cfg = repo_config(
        'configs/hybrid_distill/hybrid-distill_vit-tiny-p8_1xb32-10e_'
        'procedural-64px.py')
    cfg.merge_from_dict(option)
    with pytest.raises(PreflightError) as err:
        check_unknown_keys(cfg)
    assert f'  {problem}\n' in str(err.value)


def test_unknown_key_in_a_scoped_third_party_model():
    cfg = repo_config(
        BENCH + 'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py')
    cfg.merge_from_dict({'model.neck.0.rescale': [4, 2, 1, 0.5],
                         'model.roi_head.bbox_head.num_clases': 3})
    with pytest.raises(PreflightError) as err:
        check_unknown_keys(cfg)
    msg = str(err.value)
    assert "model.neck[0]: unknown key 'rescale' for Feature2Pyramid" in msg
    assert "did you mean 'num_classes'?" in msg


def test_classes_taking_any_keyword_are_not_checked():
    cfg = repo_config(SDAE_TINY)
    cfg.default_hooks.checkpoint.anything = 1  # CheckpointHook(**kwargs)
    cfg.custom_hooks[0].priority = 'LOW'  # popped by the Runner
    assert check_unknown_keys(cfg) == []


def all_configs():
    import glob
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return sorted(osp.relpath(p, root) for p in glob.glob(
        osp.join(root, 'configs', '**', '*.py'), recursive=True))


@pytest.mark.parametrize('path', all_configs())
def test_no_false_positives_in_the_shipped_configs(path):
    assert check_unknown_keys(repo_config(path)) == []
