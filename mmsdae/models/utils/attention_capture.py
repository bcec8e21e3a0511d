"""The attention of mmpretrain ViT blocks, made visible.

mmpretrain's ``MultiheadAttention`` calls a fused
``scaled_dot_product_attention`` that never materialises the attention
matrix ``softmax(q k^T * s)``. Two ways to get it, both with the module's own
``num_heads``, ``head_dims``, qkv bias and multiplier ``s``
(:func:`attention_multiplier`):

- :class:`AttentionRecorder` (analysis): forward pre-hooks on every block
  recompute the probabilities from the block's input under ``no_grad``;
  ``P @ v`` through ``attn.proj`` gives the module's output exactly
  (``tests/test_analysis/test_attention.py``).
- :class:`AttentionCapture` (training, Hybrid Distill): the chosen blocks run
  their attention explicitly, ``A = q k^T * s``, ``out = softmax(A) @ v``
  (same q, k, v, projection and attention dropout, so training through the
  capture trains the same network), and the logits ``A`` (B, H, T, T) stay
  in the autograd graph for the loss. Blocks not captured keep the fused
  kernel.
"""
import functools
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .vit import encoder_layers, run_encoder

__all__ = [
    'AttentionCapture', 'AttentionRecorder', 'attention_maps',
    'attention_multiplier', 'attention_probs', 'normalize_layer_indices'
]


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


def check_attention_module(attn: nn.Module) -> None:
    if not all(hasattr(attn, a) for a in ('qkv', 'num_heads', 'head_dims',
                                          'scaled_dot_product_attention')):
        raise TypeError(
            f'{type(attn).__name__} is not an mmpretrain MultiheadAttention '
            '(qkv, num_heads, head_dims): use a VisionTransformer, MAEViT or '
            'SdAEViT encoder.')


@torch.no_grad()
def attention_probs(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, T) attention probabilities of ``attn`` (an mmpretrain
    ``MultiheadAttention``) recomputed on its input ``x`` (B, T, C)."""
    check_attention_module(attn)
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
        self.modules = [layer.attn for layer in encoder_layers(encoder)]
        for attn in self.modules:
            check_attention_module(attn)
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


@torch.no_grad()
def attention_maps(encoder: nn.Module,
                   images: torch.Tensor) -> List[torch.Tensor]:
    """Per block, the (B, H, T, T) attention probabilities of ``encoder`` on
    whole ``images`` (class token first, then patches in raster order)."""
    with AttentionRecorder(encoder) as recorder:
        run_encoder(encoder, images)
    if any(m is None for m in recorder.maps):
        raise RuntimeError(
            f'{type(encoder).__name__}.forward did not run every attention '
            'block; cannot record its attention.')
    return list(recorder.maps)


def normalize_layer_indices(indices: Sequence[int], depth: int,
                            name: str = 'layers') -> List[int]:
    """Non-negative block indices (``-1`` is the last block), checked
    against ``depth`` and for duplicates."""
    out = []
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f'{name}: block indices must be ints, got '
                            f'{index!r}.')
        if not -depth <= index < depth:
            raise ValueError(f'{name}: block index {index} is outside a '
                             f'{depth}-block encoder.')
        out.append(index % depth)
    if len(set(out)) != len(out):
        raise ValueError(f'{name}: block {out} lists a block twice.')
    return out


class AttentionCapture:
    """Context manager: run the attention of ``layers`` of ``encoder``
    explicitly and record its logits ``q k^T * s``.

    Example:
        >>> with AttentionCapture(student, [0, 1]) as capture:
        ...     tokens = student.encode_patches(x, ids, keep_cls=True)
        >>> capture.logits[0]  # (B, H, T, T), part of the autograd graph

    ``layers`` may count from the end; empty captures nothing.
    """

    def __init__(self, encoder: nn.Module, layers: Sequence[int]) -> None:
        blocks = encoder_layers(encoder)
        self.depth = len(blocks)
        self.layers = normalize_layer_indices(layers, len(blocks))
        self.modules = {i: blocks[i].attn for i in self.layers}
        for attn in self.modules.values():
            check_attention_module(attn)
        self.logits: Dict[int, torch.Tensor] = {}
        self._saved = {}

    def _explicit(self, index: int, multiplier: float):

        def attention(query, key, value, attn_mask=None, dropout_p=0.,
                      **kwargs):
            if attn_mask is not None or kwargs.get('is_causal'):
                raise NotImplementedError(
                    'attention capture supports unmasked, non-causal '
                    'attention only (the ViT encoders).')
            logits = (query @ key.transpose(-2, -1)) * multiplier
            self.logits[index] = logits
            probs = logits.softmax(dim=-1)
            if dropout_p:
                probs = torch.dropout(probs, dropout_p, True)
            return probs.to(value.dtype) @ value

        return attention

    def __enter__(self) -> 'AttentionCapture':
        self.logits = {}
        for index, attn in self.modules.items():
            own = 'scaled_dot_product_attention' in vars(attn)
            self._saved[index] = (own, vars(attn).get(
                'scaled_dot_product_attention'))
            multiplier = attention_multiplier(attn)
            attn.scaled_dot_product_attention = self._explicit(
                index, multiplier)
        return self

    def __exit__(self, *exc) -> None:
        for index, (own, value) in self._saved.items():
            attn = self.modules[index]
            if own:
                attn.scaled_dot_product_attention = value
            else:
                del attn.scaled_dot_product_attention
        self._saved = {}

    def get(self, layers: Sequence[int]) -> List[torch.Tensor]:
        """The recorded logits of ``layers`` (negative indices count from
        the end, as in the constructor), in that order."""
        layers = normalize_layer_indices(layers, self.depth)
        missing = [i for i in layers if i not in self.logits]
        if missing:
            raise RuntimeError(
                f'blocks {missing} were not captured: capture them and run '
                'the encoder inside the `with` block.')
        return [self.logits[i] for i in layers]
