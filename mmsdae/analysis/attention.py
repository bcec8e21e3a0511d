"""Measures on attention maps: class-token maps and the average attention
distance.

The maps come from :func:`mmsdae.models.utils.attention_capture.
attention_maps` (re-exported here with the recorder it uses).

Used by ``tools/analysis_tools/vis_attention.py`` (class-token attention of
the last block per head, SdAE supplementary Fig. S-3; with ``--query`` the
region holding 10 % of a query patch's attention mass, RC-MAE Fig. 4) and
``tools/analysis_tools/attention_distance.py`` (average attention distance
per layer and head, Hybrid Distill appendix Figs. A1-A4).
"""
import math
from typing import Optional, Sequence, Union

import torch

from ..models.utils.attention_capture import (AttentionRecorder,
                                              attention_maps,
                                              attention_multiplier,
                                              attention_probs)
from ..models.utils.vit import run_encoder, to_pair

__all__ = [
    'AttentionRecorder', 'attention_multiplier', 'attention_probs',
    'run_encoder', 'attention_maps', 'cls_attention', 'query_attention',
    'mass_region', 'patch_distances', 'attention_distance',
    'attention_distances'
]

PatchSize = Union[int, Sequence[int]]


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
    height, width = to_pair(grid)
    if height * width != num_patches:
        raise ValueError(f'grid {height}x{width} does not match '
                         f'{num_patches} patch tokens.')
    return height, width


def cls_attention(attn: torch.Tensor,
                  grid: Optional[Sequence[int]] = None,
                  num_extra_tokens: int = 1,
                  renormalize: bool = False) -> torch.Tensor:
    """(B, H, h, w) (or (H, h, w)) attention of the class token (query 0)
    to the patches of ``attn`` (B, H, T, T) (or (H, T, T)); ``grid`` None is
    square; ``renormalize`` makes each map sum to one over the patches."""
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
# The attention region of a query patch (RC-MAE Fig. 4)
# --------------------------------------------------------------------------
def query_attention(attn: torch.Tensor,
                    query: Sequence[int],
                    grid: Optional[Sequence[int]] = None,
                    num_extra_tokens: int = 1) -> torch.Tensor:
    """(B, H, h, w) (or (H, h, w)) attention of the patch at ``query = (row,
    col)`` to the patches, renormalised over the patch keys (as DINO's
    attention thresholding)."""
    single = attn.dim() == 3
    if single:
        attn = attn.unsqueeze(0)
    height, width = _grid_of(attn.shape[-1] - num_extra_tokens, grid)
    row, col = to_pair(query)
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f'query patch ({row}, {col}) is outside the '
                         f'{height}x{width} patch grid.')
    index = num_extra_tokens + row * width + col
    maps = attn[:, :, index, num_extra_tokens:].double()
    maps = maps / maps.sum(dim=-1, keepdim=True)
    maps = maps.reshape(*maps.shape[:2], height, width)
    return maps[0] if single else maps


def mass_region(weights: torch.Tensor, mass: float = 0.1) -> torch.Tensor:
    """The smallest set of positions whose weights hold at least ``mass`` of
    the total: the largest weights, taken in decreasing order until their
    sum reaches ``mass * total`` (RC-MAE Fig. 4 with ``mass=0.1``: "attention
    maps obtained by thresholding 10 % mass of the query patch").

    ``weights`` (..., h, w) are non-negative maps; returns a bool tensor
    shaped like them.
    """
    if not 0 < mass <= 1:
        raise ValueError(f'mass={mass}: choose a fraction in (0, 1].')
    flat = weights.flatten(-2).double()
    order = flat.argsort(dim=-1, descending=True, stable=True)
    ranked = flat.gather(-1, order)
    before = ranked.cumsum(dim=-1) - ranked  # mass of the larger ones
    keep = before < mass * flat.sum(dim=-1, keepdim=True)
    region = torch.zeros_like(keep).scatter(-1, order, keep)
    return region.reshape(weights.shape)


# --------------------------------------------------------------------------
# Average attention distance (Hybrid Distill appendix Figs. A1-A4)
# --------------------------------------------------------------------------
def patch_distances(grid: Sequence[int], patch_size: PatchSize,
                    dtype=torch.float64) -> torch.Tensor:
    """(N, N) Euclidean distances in pixels between the centres of the
    patches of an (h, w) grid in raster order: grid offsets times the patch
    size (``sqrt((di * ph)^2 + (dj * pw)^2)``)."""
    height, width = to_pair(grid)
    patch_h, patch_w = to_pair(patch_size)
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

    Returns an (H,) float64 tensor.
    """
    if attn.dim() == 3:
        attn = attn.unsqueeze(0)
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError('attn must have shape (B, H, T, T) or (H, T, T), '
                         f'got {tuple(attn.shape)}.')
    height, width = to_pair(grid)
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
