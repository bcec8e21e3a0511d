"""Attention probabilities of mmpretrain ViTs, class-token maps and the
average attention distance.

mmpretrain's :class:`~mmpretrain.models.utils.MultiheadAttention` calls a
fused ``scaled_dot_product_attention``, so the attention probabilities are
never materialised. :class:`AttentionRecorder` registers a forward pre-hook
on every ``encoder.layers[i].attn``, takes the block's input to attention
(the output of ``ln1``) and recomputes, per head,

    P = softmax(q k^T * s)   with (q, k, v) = attn.qkv(x) split into heads,

with the same ``num_heads``, ``head_dims``, qkv bias and multiplier ``s``
(:func:`attention_multiplier`) as the module, so ``P @ v`` through
``attn.proj`` gives the module's output exactly (checked in
``tests/test_analysis/test_attention.py``).

Used by ``tools/analysis_tools/vis_attention.py`` (class-token attention of
the last block per head, SdAE supplementary Fig. S-3) and
``tools/analysis_tools/attention_distance.py`` (average attention distance
per layer and head, Hybrid Distill appendix Figs. A1-A4).
"""
import functools
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    'AttentionRecorder', 'attention_multiplier', 'attention_probs',
    'run_encoder', 'attention_maps', 'cls_attention', 'patch_distances',
    'attention_distance', 'attention_distances'
]

PatchSize = Union[int, Sequence[int]]


def _pair(value) -> Tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


# --------------------------------------------------------------------------
# Capturing the attention probabilities
# --------------------------------------------------------------------------
def attention_multiplier(attn: nn.Module) -> float:
    """The factor ``s`` of ``softmax(q k^T * s)`` in ``attn.forward``.

    - ``F.scaled_dot_product_attention`` (mmpretrain's default on torch >=
      2.0): ``s = scale`` if bound, else ``head_dims ** -0.5``;
    - mmpretrain's ``scaled_dot_product_attention_pyimpl`` (used when
      ``qk_scale`` is set) DIVIDES by its ``scale`` argument, and
      ``MultiheadAttention`` binds ``scale=head_dims ** -0.5`` whatever
      ``qk_scale`` is, so there ``s = head_dims ** 0.5`` (we reproduce the
      module, quirk included).
    """
    from mmpretrain.models.utils.attention import \
        scaled_dot_product_attention_pyimpl
    function = attn.scaled_dot_product_attention
    scale = None
    if isinstance(function, functools.partial):
        scale = function.keywords.get('scale')
        function = function.func
    if function is F.scaled_dot_product_attention:
        return float(scale) if scale is not None else attn.head_dims**-0.5
    if function is scaled_dot_product_attention_pyimpl:
        return 1.0 / float(scale) if scale else attn.head_dims**-0.5
    raise TypeError(
        f'{type(attn).__name__} computes attention with {function!r}: only '
        'mmpretrain MultiheadAttention with torch / mmpretrain scaled dot '
        'product attention is supported.')


def _check_attention_module(attn: nn.Module) -> None:
    if not all(hasattr(attn, a) for a in ('qkv', 'num_heads', 'head_dims',
                                          'scaled_dot_product_attention')):
        raise TypeError(
            f'{type(attn).__name__} is not an mmpretrain MultiheadAttention '
            '(qkv, num_heads, head_dims): the attention tools support '
            'VisionTransformer, MAEViT and SdAEViT encoders.')


@torch.no_grad()
def attention_probs(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Recompute the attention probabilities of ``attn`` on its input.

    Args:
        attn: an mmpretrain ``MultiheadAttention``.
        x: its input (B, T, C), i.e. ``layer.ln1(tokens)``.

    Returns:
        (B, H, T, T) probabilities; row ``t`` is the distribution of query
        ``t`` over all T keys (class token included) and sums to one.
    """
    _check_attention_module(attn)
    batch, tokens, _ = x.shape
    qkv = attn.qkv(x).reshape(batch, tokens, 3, attn.num_heads,
                              attn.head_dims).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    logits = (q @ k.transpose(-2, -1)) * attention_multiplier(attn)
    return logits.softmax(dim=-1)


class AttentionRecorder:
    """Context manager recording the attention probabilities of every block
    of a ViT encoder (forward pre-hooks on ``encoder.layers[i].attn``).

    Example:
        >>> with AttentionRecorder(encoder) as recorder:
        ...     run_encoder(encoder, images)
        >>> maps = recorder.maps  # list over layers of (B, H, T, T)
    """

    def __init__(self, encoder: nn.Module):
        layers = getattr(encoder, 'layers', None)
        if layers is None or not len(layers):
            raise TypeError(
                f'{type(encoder).__name__} has no `layers`: pass a ViT '
                'encoder (VisionTransformer, MAEViT, SdAEViT).')
        self.modules = [layer.attn for layer in layers]
        for attn in self.modules:
            _check_attention_module(attn)
        self.maps: List[Optional[torch.Tensor]] = [None] * len(self.modules)
        self._handles = []

    def _hook(self, index: int):

        def hook(module, args):
            self.maps[index] = attention_probs(module, args[0])

        return hook

    def __enter__(self) -> 'AttentionRecorder':
        self.maps = [None] * len(self.modules)
        self._handles = [
            attn.register_forward_pre_hook(self._hook(i))
            for i, attn in enumerate(self.modules)
        ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def run_encoder(encoder: nn.Module, images: torch.Tensor):
    """Run a ViT encoder on the whole image, without masking.

    ``MAEViT`` (and ``SdAEViT``) mask at random unless ``mask=None``:
    mmpretrain's ``MAEViT.forward`` tests ``if mask is None or False``, so
    only ``None`` (not ``False``) disables its masking.
    """
    from mmpretrain.models import MAEViT
    if isinstance(encoder, MAEViT):
        return encoder(images, mask=None)
    return encoder(images)


@torch.no_grad()
def attention_maps(encoder: nn.Module,
                   images: torch.Tensor) -> List[torch.Tensor]:
    """Attention probabilities of every block on whole images.

    Args:
        encoder: a ViT encoder (eval mode is the caller's choice; the
            analysis tools use eval mode, i.e. no drop path).
        images: normalised (B, 3, H, W) batch.

    Returns:
        list over layers of (B, H, T, T) tensors, T = extra tokens (the class
        token, first) + patches in raster order.
    """
    with AttentionRecorder(encoder) as recorder:
        run_encoder(encoder, images)
    if any(m is None for m in recorder.maps):
        raise RuntimeError(
            f'{type(encoder).__name__}.forward did not run every attention '
            'block; cannot record its attention.')
    return list(recorder.maps)


# --------------------------------------------------------------------------
# Class-token attention (SdAE supplementary Fig. S-3)
# --------------------------------------------------------------------------
def _grid_of(num_patches: int, grid: Optional[Sequence[int]]):
    if grid is None:
        side = int(round(math.sqrt(num_patches)))
        if side * side != num_patches:
            raise ValueError(f'{num_patches} patches are no square grid: '
                             'pass grid=(h, w).')
        return side, side
    height, width = _pair(grid)
    if height * width != num_patches:
        raise ValueError(f'grid {height}x{width} does not match '
                         f'{num_patches} patch tokens.')
    return height, width


def cls_attention(attn: torch.Tensor,
                  grid: Optional[Sequence[int]] = None,
                  num_extra_tokens: int = 1,
                  renormalize: bool = False) -> torch.Tensor:
    """Attention of the class token (query 0) to the patches.

    Args:
        attn: (B, H, T, T) (or (H, T, T)) probabilities, e.g. of the last
            block.
        grid: (h, w) patches; None for a square grid.
        num_extra_tokens: tokens before the patches (1: the class token).
        renormalize: divide by the mass on the patches, so that each map
            sums to one over patches. By default the raw probabilities are
            kept: they sum to ``1 - P[cls, extra tokens]`` over patches (the
            rest is the class token's attention to itself).

    Returns:
        (B, H, h, w) (or (H, h, w)) maps in raster order.
    """
    single = attn.dim() == 3
    if single:
        attn = attn.unsqueeze(0)
    maps = attn[:, :, 0, num_extra_tokens:]
    height, width = _grid_of(maps.shape[-1], grid)
    if renormalize:
        maps = maps / maps.sum(dim=-1, keepdim=True)
    maps = maps.reshape(*maps.shape[:2], height, width)
    return maps[0] if single else maps


# --------------------------------------------------------------------------
# Average attention distance (Hybrid Distill appendix Figs. A1-A4)
# --------------------------------------------------------------------------
def patch_distances(grid: Sequence[int], patch_size: PatchSize,
                    dtype=torch.float64) -> torch.Tensor:
    """(N, N) Euclidean distances in pixels between the centres of the
    patches of an (h, w) grid in raster order: grid offsets times the patch
    size (``sqrt((di * ph)^2 + (dj * pw)^2)``)."""
    height, width = _pair(grid)
    patch_h, patch_w = _pair(patch_size)
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=dtype) * patch_h,
        torch.arange(width, dtype=dtype) * patch_w,
        indexing='ij')
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1)
    return torch.cdist(centres, centres)


def attention_distance(attn: torch.Tensor,
                       grid: Sequence[int],
                       patch_size: PatchSize,
                       num_extra_tokens: int = 1) -> torch.Tensor:
    """Average attention distance of each head, in pixels.

    For head ``h``, with ``P`` the attention probabilities among the N
    patch tokens only (the class token, and any other extra token, is
    excluded as query and as key) and each query row renormalised to sum
    to one over the patch keys,

        D_h = mean over images b and query patches q of
              sum over key patches k of P~[b, h, q, k] * d(q, k),

        P~[b, h, q, k] = P[b, h, q, k] / sum_k' P[b, h, q, k'],

    where ``d(q, k)`` is the pixel distance between the patch centres
    (:func:`patch_distances`). So attention only to itself gives 0, one-hot
    attention to a horizontal neighbour gives exactly the patch size, and
    uniform attention gives the mean distance between grid cells (self
    pairs included).

    Args:
        attn: (B, H, T, T) or (H, T, T) probabilities, T = extra + h * w.
        grid: (h, w) patches.
        patch_size: patch side in pixels, or (ph, pw).
        num_extra_tokens: leading tokens that are not patches.

    Returns:
        (H,) float64 tensor.
    """
    if attn.dim() == 3:
        attn = attn.unsqueeze(0)
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError('attn must have shape (B, H, T, T) or (H, T, T), '
                         f'got {tuple(attn.shape)}.')
    height, width = _pair(grid)
    tokens = attn.shape[-1]
    if tokens != num_extra_tokens + height * width:
        raise ValueError(
            f'attention over {tokens} tokens does not match {height}x{width} '
            f'patches plus {num_extra_tokens} extra token(s).')
    patches = attn[..., num_extra_tokens:, num_extra_tokens:].double()
    patches = patches / patches.sum(dim=-1, keepdim=True)
    distances = patch_distances((height, width), patch_size)
    per_query = (patches * distances).sum(dim=-1)  # (B, H, N)
    return per_query.mean(dim=(0, 2))


def attention_distances(maps: Sequence[torch.Tensor],
                        grid: Sequence[int],
                        patch_size: PatchSize,
                        num_extra_tokens: int = 1) -> torch.Tensor:
    """:func:`attention_distance` of every layer: (L, H) float64 tensor."""
    return torch.stack([
        attention_distance(attn, grid, patch_size, num_extra_tokens)
        for attn in maps
    ])
