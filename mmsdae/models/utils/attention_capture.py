"""Attention logits of chosen ViT blocks, with gradients (Hybrid Distill).

mmpretrain's ``MultiheadAttention`` calls a fused
``scaled_dot_product_attention`` that never materialises the attention
matrix. Inside :class:`AttentionCapture` the chosen blocks' attention runs
explicitly instead:

    A = q k^T * s,    out = softmax(A) @ v    (per head)

with ``s`` the module's own multiplier
(:func:`mmsdae.analysis.attention.attention_multiplier`, the factor the
fused call would use), and ``A`` (B, H, T, T) is kept for the loss. The block
output is the module's (same q, k, v, projection and attention dropout), so
training through the capture trains the same network; gradients flow
through ``A`` into the block's ``qkv``. Blocks that are not captured keep
the fused kernel.

Unlike :class:`mmsdae.analysis.attention.AttentionRecorder` (forward
pre-hooks that recompute the probabilities under ``no_grad`` for analysis),
this computes the attention once and keeps the autograd graph: it is what a
student imitating a teacher's attention needs.
"""
from typing import Dict, List, Sequence

import torch
from torch import nn

from mmsdae.analysis.attention import attention_multiplier

__all__ = ['AttentionCapture', 'normalize_layer_indices']


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


def _attention_modules(encoder: nn.Module) -> nn.ModuleList:
    layers = getattr(encoder, 'layers', None)
    if layers is None or not len(layers):
        raise TypeError(
            f'{type(encoder).__name__} has no `layers`: attention capture '
            'supports mmpretrain ViT encoders (VisionTransformer, MAEViT, '
            'SdAEViT).')
    return layers


class AttentionCapture:
    """Context manager: run the attention of ``layers`` of ``encoder``
    explicitly and record its logits ``q k^T * s``.

    Example:
        >>> with AttentionCapture(student, [0, 1]) as capture:
        ...     tokens = student.encode_patches(x, ids, keep_cls=True)
        >>> capture.logits[0]  # (B, H, T, T), part of the autograd graph

    Args:
        encoder: an mmpretrain ViT encoder (``encoder.layers[i].attn`` is a
            ``MultiheadAttention``).
        layers: block indices to capture (negative counts from the end);
            empty captures nothing (the encoder runs as usual).
    """

    def __init__(self, encoder: nn.Module, layers: Sequence[int]) -> None:
        blocks = _attention_modules(encoder)
        self.depth = len(blocks)
        self.layers = normalize_layer_indices(layers, len(blocks))
        self.modules = {i: blocks[i].attn for i in self.layers}
        for attn in self.modules.values():
            if not all(
                    hasattr(attn, a)
                    for a in ('qkv', 'num_heads', 'head_dims',
                              'scaled_dot_product_attention')):
                raise TypeError(
                    f'{type(attn).__name__} is not an mmpretrain '
                    'MultiheadAttention: cannot capture its attention.')
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
