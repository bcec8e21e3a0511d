"""ViTDet's pieces (issue 18, part 4; Li et al. 2022): decomposed relative
positions in DenseViT, the simple feature pyramid, and the ViTDet configs'
backbone built as ViTDet defines it (windows, global blocks)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmsdae.models.backbones.dense_vit import (DecomposedRelativePosition,
                                               DenseViT)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def loop_bias(q, rel_h, rel_w, h, w):
    """ViTDet's ``add_decomposed_rel_pos`` term written out: the logit of
    query (i, j) and key (k, l) gets q_ij . R_h[i - k + h - 1] + q_ij .
    R_w[j - l + w - 1]."""
    B, heads, _, _ = q.shape
    out = torch.zeros(B, heads, h * w, h * w)
    for i in range(h):
        for j in range(w):
            for k in range(h):
                for m in range(w):
                    qij = q[:, :, i * w + j]
                    out[:, :, i * w + j, k * w + m] = (
                        qij @ rel_h[i - k + h - 1] +
                        qij @ rel_w[j - m + w - 1])
    return out


def test_decomposed_bias_is_vitdet_term():
    torch.manual_seed(0)
    h, w, C = 3, 4, 5
    rel = DecomposedRelativePosition((h, w), C)
    with torch.no_grad():
        rel.rel_pos_h.normal_()
        rel.rel_pos_w.normal_()
    q = torch.randn(2, 3, h * w, C)
    expected = loop_bias(q, rel.rel_pos_h, rel.rel_pos_w, h, w)
    assert torch.allclose(rel.attention_bias(q, (h, w)), expected, atol=1e-5)
    # a table indexed the other way round (k - i) is a different term
    flipped = loop_bias(q, rel.rel_pos_h.flip(0), rel.rel_pos_w.flip(0), h, w)
    assert not torch.allclose(flipped, expected, atol=1e-3)
    with pytest.raises(ValueError, match='grid'):
        rel.attention_bias(q, (w, h))


def small_vit(**kwargs):
    args = dict(
        arch=dict(embed_dims=32, num_layers=4, num_heads=2,
                  feedforward_channels=64),
        img_size=64, patch_size=8, with_cls_token=False, out_type='featmap',
        final_norm=False, out_indices=(3, ))
    args.update(kwargs)
    return DenseViT(**args)


def test_decomposed_tables_sit_in_each_block_at_its_grid():
    vit = small_vit(window_size=3, global_attn_indexes=(1, 3),
                    rel_pos_bias='decomposed')
    for i, layer in enumerate(vit.layers):
        side = 8 if i in (1, 3) else 3  # global: the 8 x 8 grid
        assert layer.attn.rel_pos.rel_pos_h.shape == (2 * side - 1, 16)
        assert not layer.attn.rel_pos.rel_pos_w.any()  # zero at the start
        assert vit.get_layer_depth(
            f'layers.{i}.attn.rel_pos.rel_pos_h')[0] == i + 1
    # zero tables: the same function as without relative positions
    plain = small_vit(window_size=3, global_attn_indexes=(1, 3))
    plain.load_state_dict(vit.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(vit(x)[0], plain(x)[0], atol=1e-5)
    with torch.no_grad():
        vit.layers[1].attn.rel_pos.rel_pos_h.normal_()
    assert not torch.allclose(vit(x)[0], plain(x)[0], atol=1e-3)


def test_learned_table_with_class_row_loads_at_another_grid():
    """An MAE / G2SD encoder file (14 x 14 + class row) into a ViTDet
    backbone without class token (1024 px: 64 x 64)."""
    vit = small_vit()  # 8 x 8 grid
    table = torch.randn(1, 1 + 4 * 4, 32)
    vit.load_state_dict({'pos_embed': table}, strict=False)
    expected = torch.nn.functional.interpolate(
        table[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2), size=(8, 8),
        mode='bicubic', align_corners=False).flatten(2).transpose(1, 2)
    assert torch.allclose(vit.pos_embed, expected, atol=1e-5)


def test_pretrain_grid_table_is_resized_at_every_forward():
    """ViTDet's get_abs_pos: the 14 x 14 (here 4 x 4) table stays the
    parameter, the class-token row dropped, and is interpolated to the
    input's grid (bicubic, align_corners=False) at every forward pass."""
    vit = small_vit(pretrain_img_size=32)  # 4 x 4 table, 8 x 8 input grid
    table = torch.randn(1, 1 + 16, 32)
    vit.load_state_dict({'pos_embed': table}, strict=False)
    assert torch.equal(vit.pos_embed, table[:, 1:])
    expected = torch.nn.functional.interpolate(
        table[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2), size=(8, 8),
        mode='bicubic', align_corners=False).flatten(2).transpose(1, 2)
    assert torch.allclose(vit._pos_embed_for((8, 8)), expected, atol=1e-5)
    with pytest.raises(ValueError, match='pretrain_img_size'):
        vit.load_state_dict({'pos_embed': torch.randn(1, 37, 32)},
                            strict=False)


def build_det(kind):
    """The backbone and neck of a ViTDet config, built."""
    import mmsdae.models.detectors  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(osp.join(ROOT, 'configs/g2sd/benchmarks', kind))
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
        neck = MODELS.build(cfg.model.neck)
    return cfg, backbone, neck


@pytest.mark.parametrize('kind,width', [
    ('vitdet_mask-rcnn_vit-base-p16_lsj-8xb8-100e_coco.py', 768),
    ('vitdet_mask-rcnn_vit-small-p16_lsj-8xb8-100e_coco.py', 384),
])
def test_vitdet_backbone_is_vitdets(kind, width):
    """ViTDet ViT-B (and the G2SD ViT-S): 14 x 14 windows except blocks 2,
    5, 8, 11 (detectron2's window_block_indexes 0, 1, 3, 4, 6, 7, 9, 10),
    decomposed relative positions sized to each block's grid (64 x 64 at
    1024 px for the global blocks)."""
    _, vit, neck = build_det(kind)
    assert vit.embed_dims == width and vit.num_layers == 12
    assert vit.cls_token is None
    assert vit.pos_embed.shape == (1, 14 * 14, width)  # ViTDet's 224 table
    windowed = [i for i in range(12) if i not in vit.global_attn_indexes]
    assert windowed == [0, 1, 3, 4, 6, 7, 9, 10]
    head_dims = 64
    for i, layer in enumerate(vit.layers):
        side = 64 if i in vit.global_attn_indexes else 14
        assert layer.attn.rel_pos.rel_pos_h.shape == (2 * side - 1,
                                                      head_dims)
    assert list(vit.out_indices) == [11]
    assert [m.conv.in_channels for m in neck.lateral_convs] == [
        width // 4, width // 2, width, width]


def test_simple_fpn_strides_and_shapes():
    """From one stride-16 map of a 128 x 192 input: strides 4, 8, 16, 32,
    64 at 256 channels (ViTDet Fig. 2 + detectron2's LastLevelMaxPool)."""
    import mmsdae.models.detectors  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(
        dict(type='mmdet.SimpleFPN', backbone_channel=32,
             in_channels=[8, 16, 32, 32], out_channels=24, num_outs=5))
    x = torch.randn(2, 32, 128 // 16, 192 // 16)
    outs = neck((x, ))
    assert [tuple(o.shape) for o in outs] == [
        (2, 24, 128 // s, 192 // s) for s in (4, 8, 16, 32, 64)]
    # every level is LayerNorm-ed over channels
    assert all(o.mean(1).abs().max() < 1e-4 for o in outs[:4])
    with pytest.raises(ValueError, match='in_channels'):
        MODELS.build(dict(type='mmdet.SimpleFPN', backbone_channel=32,
                          in_channels=[32, 32, 32, 32], out_channels=24))
