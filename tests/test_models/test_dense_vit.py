"""DenseViT: the downstream ViT options (sin-cos grid, relative position
bias, windowed attention) against hand computations and the plain
mmpretrain ViT they extend."""
import math

import numpy as np
import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding

from mmsdae.models.backbones.dense_vit import (DenseViT, RelativePositionBias,
                                               sincos_2d)

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def vit(cls=VisionTransformer, **kwargs):
    kwargs = dict(dict(arch=ARCH, img_size=32, patch_size=8,
                       out_type='featmap', final_norm=False,
                       out_indices=(0, 1)), **kwargs)
    torch.manual_seed(0)
    model = cls(**kwargs)
    model.init_weights()
    model.eval()
    return model


def mae_sincos(h, w, dims):
    """MAE's get_2d_sincos_pos_embed (models_mae / util/pos_embed.py),
    written out for an h x w grid: np.meshgrid(grid_w, grid_h), the first
    half of the channels from grid[0] (the column), each half [sin, cos]."""
    grid = np.meshgrid(np.arange(w, dtype=np.float64),
                       np.arange(h, dtype=np.float64))
    omega = 1. / 10000**(np.arange(dims // 4) / (dims / 4.))

    def one_d(pos):
        out = np.einsum('m,d->md', pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([one_d(grid[0]), one_d(grid[1])], axis=1)


def test_sincos_layouts_are_mae_and_mmpretrain():
    got = sincos_2d((3, 5), 16, row_first=False).numpy()
    np.testing.assert_allclose(got, mae_sincos(3, 5, 16), atol=1e-6)
    mmpretrain_table = build_2d_sincos_position_embedding(4, 16)[0]
    torch.testing.assert_close(sincos_2d((4, 4), 16, row_first=True),
                               mmpretrain_table)


def test_default_options_are_the_plain_vit():
    x = torch.randn(2, 3, 32, 40)
    plain, dense = vit(), vit(DenseViT)
    dense.load_state_dict(plain.state_dict())
    for a, b in zip(plain(x), dense(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize('row_first', [False, True])
def test_sincos_mode_extends_the_checkpoint_table(row_first):
    """A checkpoint trained at a 4 x 4 grid with either sin-cos layout:
    at that grid the backbone is the plain ViT; at a larger grid the table's
    top-left 4 x 4 block is the checkpoint's (values depend on (row, col)
    only), and it is frozen."""
    plain = vit()
    with torch.no_grad():
        plain.pos_embed[0, 1:] = torch.from_numpy(mae_sincos(
            4, 4, 32)).float() if not row_first else \
            build_2d_sincos_position_embedding(4, 32)[0]
    dense = vit(DenseViT, pos_embed_type='sincos', img_size=32)
    dense.load_state_dict(plain.state_dict())
    assert dense.sincos_row_first is row_first
    assert not dense.pos_embed.requires_grad
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(plain(x)[1], dense(x)[1], rtol=0, atol=1e-5)
    big = dense._pos_embed_for((6, 7))[0, 1:].reshape(6, 7, 32)
    torch.testing.assert_close(big[:4, :4].reshape(16, 32),
                               plain.pos_embed[0, 1:], rtol=0, atol=1e-5)
    # A learned (random) table is refused, with the option to use.
    with pytest.raises(ValueError, match="pos_embed_type='learned'"):
        dense.load_state_dict(vit().state_dict())


def test_relative_position_index_by_hand():
    """2 x 2 grid, tokens (0,0) (0,1) (1,0) (1,1); offset (dr, dc) has index
    (dr + 1) * 3 + (dc + 1); the class token's rows use 9, 10, 11."""
    index = RelativePositionBias((2, 2), 1, cls_token=True).index
    expected = torch.tensor([
        [11, 9, 9, 9, 9],
        [10, 4, 3, 1, 0],
        [10, 5, 4, 2, 1],
        [10, 7, 6, 4, 3],
        [10, 8, 7, 5, 4],
    ])
    assert torch.equal(index, expected)


def test_relative_bias_is_added_to_the_attention_logits():
    dense = vit(DenseViT, rel_pos_bias='per_block')
    attn = dense.layers[0].attn
    with torch.no_grad():
        attn.rel_pos.relative_position_bias_table.normal_()
    x = torch.randn(2, 17, 32)
    out = dense._block(dense.layers[0], x, (4, 4), None)
    # by hand: softmax(q k^T / sqrt(d) + B) v, then proj, residual, FFN
    layer = dense.layers[0]
    h = layer.ln1(x)
    q, k, v = attn.qkv(h).reshape(2, 17, 3, 2, 16).permute(2, 0, 3, 1, 4)
    bias = attn.rel_pos.relative_position_bias_table[
        attn.rel_pos.index].permute(2, 0, 1)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(16) + bias).softmax(-1)
    y = x + attn.proj((weights @ v).transpose(1, 2).reshape(2, 17, 32))
    y = layer.ffn(layer.ln2(y), identity=y)
    torch.testing.assert_close(out, y, rtol=0, atol=1e-5)


def test_relative_bias_starts_at_zero_and_decays_with_its_block():
    plain = vit()
    dense = vit(DenseViT, rel_pos_bias='per_block')
    missing, unexpected = dense.load_state_dict(plain.state_dict(),
                                                strict=False)
    assert unexpected == []
    assert sorted(missing) == [
        f'layers.{i}.attn.rel_pos.relative_position_bias_table'
        for i in range(2)
    ]
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(plain(x)[1], dense(x)[1], rtol=0, atol=1e-6)
    depth, _ = dense.get_layer_depth(
        'backbone.layers.1.attn.rel_pos.relative_position_bias_table',
        prefix='backbone.')
    assert depth == 2  # block 1 -> depth 2, as its qkv weights
    # The checkpoint check counts the tables as trained from scratch.
    from mmsdae.utils.checkpoint import check_against_backbone
    report = check_against_backbone(
        {f'backbone.{k}': v for k, v in plain.state_dict().items()}, dense)
    assert len(report['missing']) == 2


def test_windows_do_not_see_each_other():
    """Windowed blocks only (4 x 4 windows on an 8 x 6 grid, padded to 8 x
    8): changing one patch changes the outputs of its own window only."""
    dense = vit(DenseViT, img_size=(64, 48), with_cls_token=False,
                window_size=4, global_attn_indexes=(), rel_pos_bias='shared')
    x = torch.randn(1, 3, 64, 48)
    y = x.clone()
    y[..., :8, :8] += 1  # patch (0, 0), window (0, 0)
    a, b = dense(x)[1][0], dense(y)[1][0]  # (C, 8, 6)
    changed = (a - b).abs().amax(0) > 1e-6
    assert changed[:4, :4].all()
    assert not changed[4:].any() and not changed[:, 4:].any()
    # With the last block global, the change spreads everywhere.
    dense = vit(DenseViT, img_size=(64, 48), with_cls_token=False,
                window_size=4, rel_pos_bias='shared',
                global_attn_indexes=(1, ))
    changed = (dense(x)[1][0] - dense(y)[1][0]).abs().amax(0) > 1e-6
    assert changed.all()


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match='with_cls_token=False'):
        vit(DenseViT, window_size=4)
    with pytest.raises(ValueError, match='pos_embed_type'):
        vit(DenseViT, pos_embed_type='rope')
    dense = vit(DenseViT, rel_pos_bias='per_block')
    with pytest.raises(ValueError, match='img_size'):
        dense(torch.randn(1, 3, 40, 32))


def roi_features(model, x):
    """RoIAlign (mmcv) over a convolution of the first feature map, as the
    FPN and RoI extractor of a Mask R-CNN take it; and the same RoIs pooled
    from a contiguous copy of that map (the values RoIAlign should see)."""
    from mmcv.ops import RoIAlign
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(ARCH['embed_dims'], 8, 1)
    align = RoIAlign((4, 4), spatial_scale=1 / 8, sampling_ratio=2,
                     aligned=True)
    rois = torch.tensor([[0., 3., 5., 30., 21.], [1., 10., 0., 47., 31.]])
    with torch.no_grad():
        feats = conv(model(x)[0])
        return align(feats, rois), align(feats.contiguous(), rois)


def test_detector_rois_pool_the_feature_map_values():
    """mmcv's RoIAlign reads channels-last strides as NCHW
    (open-mmlab/mmcv#2203): DenseViT's feature maps are contiguous, so the
    RoIs pool what the map holds; mmpretrain's permuted view does not."""
    x = torch.randn(2, 3, 32, 48)
    model = vit(DenseViT, pos_embed_type='sincos')
    assert all(out.is_contiguous() for out in model(x))
    pooled, expected = roi_features(model, x)
    torch.testing.assert_close(pooled, expected)
    pooled, expected = roi_features(vit(), x)  # the broken variant
    assert (pooled - expected).abs().max() > 0.1
