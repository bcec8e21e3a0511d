"""A plain ViT for dense prediction, with the three options the reference
detection / segmentation code adds to a pre-trained encoder: a fixed 2-D
sin-cos position table computed at the input's grid, relative position
bias, and windowed attention. The weights are those of mmpretrain's
:class:`VisionTransformer` (same keys), so one exported encoder serves every
protocol; which reference uses which option is tabled in
``configs/sdae/benchmarks/README.md``."""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

Grid = Tuple[int, int]


def sincos_2d(grid: Grid, dims: int, row_first: bool) -> torch.Tensor:
    """The fixed 2-D sin-cos table of MAE, ``(h * w, dims)``, tokens in
    row-major order. A token at row r, column c gets
    ``[sin(a w), cos(a w), sin(b w), cos(b w)]`` with
    ``w_i = 10000^(-i / (dims / 4))``; MAE's ``get_2d_sincos_pos_embed`` puts
    the column first (a = c, b = r), mmpretrain's ``MAEViT`` the row
    (``row_first``: a = r, b = c). Both are the same table transposed on a
    square grid; an encoder must keep the one it was trained with."""
    if dims % 4:
        raise ValueError(f'a 2-D sin-cos table needs a width divisible by 4, '
                         f'got {dims}.')
    h, w = grid
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float32),
        torch.arange(w, dtype=torch.float32),
        indexing='ij')
    a, b = (rows, cols) if row_first else (cols, rows)
    omega = 1. / 10000**(torch.arange(dims // 4, dtype=torch.float32) /
                         (dims // 4))
    a = a.flatten()[:, None] * omega
    b = b.flatten()[:, None] * omega
    return torch.cat([a.sin(), a.cos(), b.sin(), b.cos()], dim=1)


class RelativePositionBias(nn.Module):
    """A learned bias per head and relative offset inside an ``h x w`` token
    grid (BEiT, Bao et al. 2022, Sec. 2.6), zero at the start of fine-tuning
    as in CAE's, BEiT's and MIMDet's downstream code. With ``cls_token`` the
    table has three more entries (class-to-token, token-to-class,
    class-to-class) and the class token comes first in the sequence."""

    def __init__(self, grid: Grid, num_heads: int, cls_token: bool) -> None:
        super().__init__()
        self.grid, self.cls_token = tuple(grid), cls_token
        h, w = self.grid
        num_offsets = (2 * h - 1) * (2 * w - 1)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(num_offsets + 3 * cls_token, num_heads))
        rows, cols = torch.meshgrid(
            torch.arange(h), torch.arange(w), indexing='ij')
        rows, cols = rows.flatten(), cols.flatten()
        index = ((rows[:, None] - rows[None] + h - 1) * (2 * w - 1) +
                 cols[:, None] - cols[None] + w - 1)
        if cls_token:
            index = F.pad(index, (1, 0, 1, 0))
            index[0, :] = num_offsets
            index[:, 0] = num_offsets + 1
            index[0, 0] = num_offsets + 2
        self.register_buffer('index', index, persistent=False)

    def forward(self, grid: Grid) -> torch.Tensor:
        """The ``(heads, N, N)`` bias for a sequence over ``grid``."""
        if tuple(grid) != self.grid:
            raise ValueError(
                f'the relative position bias was built for a {self.grid} '
                f'token grid and the input gives {tuple(grid)}: feed inputs '
                'of the size the backbone was built for (img_size; fixed-size '
                'crops or padding), or build it for this size.')
        return self.relative_position_bias_table[self.index].permute(2, 0, 1)

    def attention_bias(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The bias added to the attention logits (``q`` is unused)."""
        return self(grid)


class DecomposedRelativePosition(nn.Module):
    """ViTDet's relative positions (Li et al. 2022, after MViTv2, Li et al.
    2022, Eq. 4 with decomposed distances): one learned embedding per head
    channel and row offset, one per column offset, zero at the start
    (detectron2's ``rel_pos_zero_init``); the logit of query ``(i, j)`` and
    key ``(k, l)`` gets ``q_ij . (R_h[i - k] + R_w[j - l])`` with the
    unscaled query."""

    def __init__(self, grid: Grid, head_dims: int) -> None:
        super().__init__()
        self.grid = tuple(grid)
        h, w = self.grid
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * h - 1, head_dims))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * w - 1, head_dims))
        for name, n in (('index_h', h), ('index_w', w)):
            steps = torch.arange(n)
            self.register_buffer(
                name, steps[:, None] - steps[None] + n - 1, persistent=False)

    def attention_bias(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The ``(B, heads, N, N)`` bias for queries ``q`` ``(B, heads, N,
        head_dims)`` over ``grid``."""
        if tuple(grid) != self.grid:
            raise ValueError(
                f'the relative positions were built for a {self.grid} token '
                f'grid and the input gives {tuple(grid)}: feed inputs of the '
                'size the backbone was built for (img_size; fixed-size crops '
                'or padding).')
        (h, w), (B, heads, N, C) = self.grid, q.shape
        q = q.reshape(B, heads, h, w, C)
        rel_h = torch.einsum('bnhwc,hkc->bnhwk', q,
                             self.rel_pos_h[self.index_h].to(q.dtype))
        rel_w = torch.einsum('bnhwc,wkc->bnhwk', q,
                             self.rel_pos_w[self.index_w].to(q.dtype))
        return (rel_h[..., :, None] + rel_w[..., None, :]).reshape(
            B, heads, N, N)


@MODELS.register_module()
class DenseViT(VisionTransformer):
    """mmpretrain's :class:`VisionTransformer` with the downstream options of
    the references the papers' dense-prediction numbers come from.

    Args:
        pos_embed_type (str): ``'learned'``: mmpretrain's behaviour (the
            checkpoint's table, bicubically resized to other grids).
            ``'sincos'``: the fixed 2-D sin-cos table computed at each input's
            grid (CAE's ``use_sincos_pos_emb`` / MIMDet's
            ``sincos_pos_embed``), frozen. The checkpoint's table must then be
            a sin-cos table (MAE's, SdAE's and RC-MAE's are); its layout
            (column or row first, see :func:`sincos_2d`) is read from it.
        rel_pos_bias (str, optional): ``'per_block'``: a
            :class:`RelativePositionBias` in every block (CAE, BEiT, mmseg's
            MAE segmentation backbone), under ``layers.i.attn.`` so layer-wise
            lr decay treats it as part of block i. ``'shared'``: one table for
            all windowed blocks and one for all global blocks (MIMDet's
            benchmarking ViT). ``'decomposed'``: ViTDet's
            :class:`DecomposedRelativePosition` in every block, placed as
            ``'per_block'``. Zero at the start in every case.
        window_size (int): 0 for global attention everywhere; else the side
            of the square windows of every block not in
            ``global_attn_indexes`` (Li et al. 2021; MIMDet: 16). The grid is
            zero-padded to a multiple of the window inside those blocks.
            Needs ``with_cls_token=False``.
        global_attn_indexes (Sequence[int], optional): blocks with global
            attention when windowed; default ``out_indices`` (MIMDet: the last
            block of each quarter).
        pretrain_img_size (int, optional): with ``'learned'``, keep the
            table at this image size's grid and resize it to the input's at
            every forward pass (ViTDet: 224); default: at ``img_size``'s.
        **kwargs: :class:`VisionTransformer`'s arguments.
    """

    def __init__(self,
                 *args,
                 pos_embed_type: str = 'learned',
                 rel_pos_bias: Optional[str] = None,
                 window_size: int = 0,
                 global_attn_indexes: Optional[Sequence[int]] = None,
                 pretrain_img_size: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if pos_embed_type not in ('learned', 'sincos'):
            raise ValueError(f"pos_embed_type must be 'learned' or 'sincos', "
                             f'got {pos_embed_type!r}.')
        if rel_pos_bias not in (None, 'per_block', 'shared', 'decomposed'):
            raise ValueError(
                "rel_pos_bias must be None, 'per_block', 'shared' or "
                f"'decomposed', got {rel_pos_bias!r}.")
        if window_size and self.cls_token is not None:
            raise ValueError('windowed attention has no place for a class '
                             'token: set with_cls_token=False (and '
                             "out_type='featmap').")
        self.pos_embed_type = pos_embed_type
        self.sincos_row_first = True  # mmpretrain's layout until loaded
        self.pos_grid = tuple(self.patch_resolution)
        if pretrain_img_size is not None:
            if pos_embed_type != 'learned':
                raise ValueError("pretrain_img_size keeps a learned table at "
                                 "another grid: it needs pos_embed_type="
                                 "'learned'.")
            stride = self.patch_embed.projection.stride
            self.pos_grid = (pretrain_img_size // stride[0],
                             pretrain_img_size // stride[1])
            self.pos_embed = nn.Parameter(
                torch.zeros(1, self.pos_grid[0] * self.pos_grid[1] +
                            self.num_extra_tokens, self.embed_dims))
        if pos_embed_type == 'sincos':
            self.pos_embed.requires_grad = False
            self._reset_sincos()
        self.window_size = window_size
        self.global_attn_indexes = set(
            self.out_indices if global_attn_indexes is None else
            global_attn_indexes) if window_size else set(
                range(self.num_layers))
        num_heads = self.arch_settings['num_heads']
        cls = self.cls_token is not None
        grid = self.patch_resolution
        if rel_pos_bias in ('per_block', 'decomposed'):
            for i, layer in enumerate(self.layers):
                block_grid = grid if i in self.global_attn_indexes else (
                    window_size, window_size)
                layer.attn.rel_pos = RelativePositionBias(
                    block_grid, num_heads, cls
                ) if rel_pos_bias == 'per_block' else (
                    DecomposedRelativePosition(block_grid,
                                               layer.attn.head_dims))
        elif rel_pos_bias == 'shared':
            self.global_rel_pos = RelativePositionBias(grid, num_heads, cls)
            if window_size:
                self.window_rel_pos = RelativePositionBias(
                    (window_size, window_size), num_heads, cls)

    def init_weights(self) -> None:
        super().init_weights()
        pretrained = (isinstance(self.init_cfg, dict)
                      and self.init_cfg.get('type') == 'Pretrained')
        if self.pos_embed_type == 'sincos' and not pretrained:
            self._reset_sincos()

    @torch.no_grad()
    def _reset_sincos(self) -> None:
        """The sin-cos table at the built grid, class-token row zero."""
        self.pos_embed.copy_(
            self._sincos(self.patch_resolution,
                         torch.zeros(1, self.embed_dims)))

    def _sincos(self, grid: Grid, cls_row=None) -> torch.Tensor:
        """The sin-cos table at ``grid``, after the class token's row (the
        checkpoint's, kept in ``pos_embed``; zeros in MAE)."""
        table = sincos_2d(grid, self.embed_dims,
                          self.sincos_row_first).to(self.pos_embed)
        if self.cls_token is not None:
            if cls_row is None:
                cls_row = self.pos_embed[0, :1]
            table = torch.cat([cls_row.to(table), table])
        return table[None]

    def _prepare_pos_embed(self, state_dict, prefix, *args, **kwargs):
        name = prefix + 'pos_embed'
        if self.pos_embed_type == 'learned' or name not in state_dict:
            tokens = state_dict[name].shape[1] if name in state_dict else 0
            if (self.cls_token is None and tokens > 1
                    and tokens != self.pos_embed.shape[1]
                    and math.isqrt(tokens - 1)**2 == tokens - 1):
                # a pre-trained table with a class-token row, at another
                # grid (mmpretrain drops that row only at the same grid)
                state_dict[name] = state_dict[name][:, 1:]
            if (name in state_dict and self.pos_grid != self.patch_resolution
                    and state_dict[name].shape != self.pos_embed.shape):
                raise ValueError(
                    f'{name}: the checkpoint holds a '
                    f'{tuple(state_dict[name].shape)} table and the backbone '
                    f'keeps one at the {self.pos_grid} grid: set '
                    "pretrain_img_size to the checkpoint's image size.")
            return super()._prepare_pos_embed(state_dict, prefix, *args,
                                              **kwargs)
        table = state_dict[name][0].float()
        cls_row = table[:0]
        if table.shape[0] == self.pos_embed.shape[1]:  # a run of this model
            grid = self.patch_resolution
            cls_row, table = table[:self.num_extra_tokens], table[
                self.num_extra_tokens:]
        else:  # an encoder pre-trained on a square grid
            if math.isqrt(table.shape[0])**2 != table.shape[0]:
                cls_row, table = table[:1], table[1:]  # class-token row
            grid = (math.isqrt(table.shape[0]), ) * 2
        errors = {}
        for row_first in (False, True):
            errors[row_first] = (table - sincos_2d(
                grid, table.shape[1], row_first)).abs().max().item()
        self.sincos_row_first = min(errors, key=errors.get)
        if errors[self.sincos_row_first] > 1e-4:
            raise ValueError(
                f"pos_embed_type='sincos', but the checkpoint's {name} is not "
                'a fixed 2-D sin-cos table (max difference '
                f'{min(errors.values()):.3g}): use '
                "pos_embed_type='learned' for an encoder with a learned "
                'position embedding.')
        if self.cls_token is not None and not len(cls_row):
            cls_row = torch.zeros(1, table.shape[1])
        state_dict[name] = self._sincos(self.patch_resolution, cls_row)

    def _pos_embed_for(self, grid: Grid) -> torch.Tensor:
        if self.pos_embed_type == 'sincos':
            if tuple(grid) == tuple(self.patch_resolution):
                return self.pos_embed
            return self._sincos(grid)
        return self.resize_pos_embed(
            self.pos_embed,
            self.pos_grid,
            grid,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)

    def forward(self, x: torch.Tensor) -> tuple:
        B = x.shape[0]
        x, grid = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = self.pre_norm(self.drop_after_pos(x + self._pos_embed_for(grid)))
        outs = []
        for i, layer in enumerate(self.layers):
            if i in self.global_attn_indexes:
                x = self._block(layer, x, grid, getattr(self, 'global_rel_pos',
                                                        None))
            else:
                x = self._windowed_block(layer, x, grid)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, grid))
        return tuple(outs)

    def _format_output(self, x: torch.Tensor, hw: Grid) -> torch.Tensor:
        """mmpretrain's outputs, the feature map made contiguous: mmpretrain
        returns a permuted view (channels-last strides), convolutions keep
        those strides, and mmcv's RoIAlign reads its input as contiguous
        NCHW without checking (open-mmlab/mmcv#2203), so a detector's RoI
        heads would pool the wrong values."""
        out = super()._format_output(x, hw)
        return out.contiguous() if self.out_type == 'featmap' else out

    def _windowed_block(self, layer, x: torch.Tensor,
                        grid: Grid) -> torch.Tensor:
        """One block over non-overlapping ``window_size`` windows of the
        zero-padded token grid."""
        (h, w), s, (B, _, C) = grid, self.window_size, x.shape
        ph, pw = -h % s, -w % s
        x = F.pad(x.view(B, h, w, C), (0, 0, 0, pw, 0, ph))
        H, W = h + ph, w + pw
        x = x.view(B, H // s, s, W // s, s, C).transpose(2, 3)
        x = self._block(layer, x.reshape(-1, s * s, C), (s, s),
                        getattr(self, 'window_rel_pos', None))
        x = x.view(B, H // s, W // s, s, s, C).transpose(2, 3)
        return x.reshape(B, H, W, C)[:, :h, :w].reshape(B, h * w, C)

    @staticmethod
    def _block(layer, x: torch.Tensor, grid: Grid,
               shared_rel_pos: Optional[RelativePositionBias]
               ) -> torch.Tensor:
        """mmpretrain's ``TransformerEncoderLayer.forward`` with a relative
        position bias added to the attention logits (BEiT Eq. 5)."""
        rel_pos = getattr(layer.attn, 'rel_pos', shared_rel_pos)
        x = x + _attention(layer.attn, layer.ln1(x), rel_pos, grid)
        return layer.ffn(layer.ln2(x), identity=x)


def _attention(attn, x: torch.Tensor, rel_pos: Optional[nn.Module],
               grid: Grid) -> torch.Tensor:
    """mmpretrain's ``MultiheadAttention.forward`` with the additive bias of
    ``rel_pos`` (none if None)."""
    B, N, _ = x.shape
    q, k, v = attn.qkv(x).reshape(B, N, 3, attn.num_heads,
                                  attn.head_dims).permute(2, 0, 3, 1, 4)
    bias = None if rel_pos is None else rel_pos.attention_bias(
        q, grid).to(q.dtype)
    x = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias,
        dropout_p=attn.attn_drop if attn.training else 0.)
    x = attn.proj(x.transpose(1, 2).reshape(B, N, attn.embed_dims))
    return attn.out_drop(attn.gamma1(attn.proj_drop(x)))
