"""tools/train.py's start-up checks: a bad pretrained file or data folder is
reported with the config key, the path and the fix, before any Runner."""
import pytest
import torch
from mmengine.config import Config

from mmsdae.utils.preflight import (PreflightError, check_data_roots,
                                    check_pretrained_checkpoints)


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
    assert check_pretrained_checkpoints(cfg_with_checkpoint(path)) == [path]


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
