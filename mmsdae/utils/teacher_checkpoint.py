"""Read a frozen teacher's weights from a local checkpoint file.

The distillation methods (G2SD, Hybrid Distill) start from teachers that
were trained elsewhere. :func:`read_teacher_checkpoint` turns a teacher file
into one mmpretrain-named state dict per teacher part (``backbone``,
``neck``, ``head``; or ``model``, a whole mmdet / mmseg model that takes
every key of an MMEngine checkpoint), whatever layout the file has:

* ``'mmpretrain'``: an MMEngine checkpoint of an mmpretrain / mmsdae model
  (``state_dict`` with ``backbone.*`` / ``neck.*`` / ``head.*``): mmpretrain's
  own MAE pre-training checkpoints, a run of ``configs/rcmae/mae_*.py``, a
  file ``tools/model_converters/sdae_to_vit.py`` wrote, mmpretrain's DeiT /
  CLIP ViT checkpoints. ``prefixes`` picks other sub-modules, e.g. the EMA
  teacher of an RC-MAE run (``backbone='teacher.', neck='teacher_neck.'``).
* ``'timm'``: timm ViT key names at the top level, optionally in
  ``{'model': ...}`` and ``module.``-prefixed: the official MAE *training*
  checkpoint (encoder + ``decoder_*`` + ``mask_token``), the public
  encoder-only MAE release ``mae_pretrain_vit_base.pth``, DeiT / CLIP ViTs
  in timm layout. The encoder is renamed with
  :data:`~mmsdae.utils.ckpt_convert.TIMM_TO_MMPRETRAIN`, the MAE decoder with
  :data:`MAE_DECODER_TO_MMPRETRAIN`, a classifier ``head.*`` with
  :data:`TIMM_HEAD_TO_MMPRETRAIN`.
* ``'mmpretrain-vit'``: mmpretrain ViT key names without any prefix
  (``layers.0.attn.qkv.weight``), e.g. a converted CLIP / DeiT encoder
  saved bare: the backbone only.

A teacher that needs a part the file does not hold is refused here, before
anything is built: in particular a G2SD teacher (its target is the MAE
decoder's hidden state) from the encoder-only MAE release, which with a
non-strict load would keep a random decoder and silently give meaningless
targets (the known reproduction pitfall in ``notes/methods.md``). Nothing is
ever downloaded: a missing file is a ``FileNotFoundError`` naming the config
key to set.
"""
import argparse
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .ckpt_convert import (_MMPRETRAIN_VIT, StateDict, _summarize_keys,
                           load_checkpoint_file,
                           timm_prefixes, timm_to_mmpretrain,
                           unwrap_state_dict)

# ``model`` is a whole model (an mmdet detector, an mmseg segmentor: the
# task teachers of G2SD's specific distillation) whose checkpoint keys have
# no part prefix; it is never combined with the other parts.
TEACHER_PARTS = ('backbone', 'neck', 'head', 'model')
DEFAULT_PREFIXES = {
    part: '' if part == 'model' else f'{part}.'
    for part in TEACHER_PARTS
}

# Official MAE decoder (facebookresearch/mae ``models_mae.py``, timm
# ``Block`` names) -> mmpretrain ``MAEPretrainDecoder`` (mmpretrain 1.2:
# ``TransformerEncoderLayer`` blocks ``ln1`` / ``attn`` / ``ln2`` /
# ``ffn.layers.0.0`` / ``ffn.layers.1``; the decoder norm is built by
# ``build_norm_layer(..., postfix=1)``, hence ``ln1``).
MAE_DECODER_TO_MMPRETRAIN: List[Tuple[str, str]] = [
    (r'decoder_embed\.(weight|bias)', r'decoder_embed.\1'),
    (r'mask_token', r'mask_token'),
    (r'decoder_pos_embed', r'decoder_pos_embed'),
    (r'decoder_blocks\.(\d+)\.norm1\.(weight|bias)',
     r'decoder_blocks.\1.ln1.\2'),
    (r'decoder_blocks\.(\d+)\.attn\.qkv\.(weight|bias)',
     r'decoder_blocks.\1.attn.qkv.\2'),
    (r'decoder_blocks\.(\d+)\.attn\.proj\.(weight|bias)',
     r'decoder_blocks.\1.attn.proj.\2'),
    (r'decoder_blocks\.(\d+)\.norm2\.(weight|bias)',
     r'decoder_blocks.\1.ln2.\2'),
    (r'decoder_blocks\.(\d+)\.mlp\.fc1\.(weight|bias)',
     r'decoder_blocks.\1.ffn.layers.0.0.\2'),
    (r'decoder_blocks\.(\d+)\.mlp\.fc2\.(weight|bias)',
     r'decoder_blocks.\1.ffn.layers.1.\2'),
    (r'decoder_norm\.(weight|bias)', r'ln1.\1'),
    (r'decoder_pred\.(weight|bias)', r'decoder_pred.\1'),
]
# timm classifier -> mmpretrain ``VisionTransformerClsHead`` (a fine-tuned
# teacher; its ``fc_norm`` is the backbone's ``ln2``, see
# ``TIMM_TO_MMPRETRAIN``).
TIMM_HEAD_TO_MMPRETRAIN: List[Tuple[str, str]] = [
    (r'head\.(weight|bias)', r'layers.head.\1'),
]
_DECODER_RULES = [(re.compile(s + '$'), d)
                  for s, d in MAE_DECODER_TO_MMPRETRAIN]
_HEAD_RULES = [(re.compile(s + '$'), d) for s, d in TIMM_HEAD_TO_MMPRETRAIN]

# What a teacher needs a full MAE training checkpoint for.
FULL_MAE_HINT = (
    'Use a full MAE training checkpoint instead: mmpretrain\'s mae_vit-base-'
    'p16 pre-training checkpoint (backbone.* + neck.*), the official MAE '
    'training checkpoint ({"model": ...} with decoder_* keys, not the '
    'encoder-only mae_pretrain_vit_base.pth release), or one trained with '
    'configs/rcmae/mae_*.py.')


class TeacherCheckpointError(ValueError):
    """A teacher checkpoint that cannot give the teacher all its weights."""


@dataclass
class TeacherState:
    """The tensors of a teacher file, per part.

    Attributes:
        path: the file.
        src_format: ``'mmpretrain'``, ``'timm'`` or ``'mmpretrain-vit'``.
        parts: part name -> mmpretrain-named tensors (no part prefix).
        unused: source keys that no part takes (e.g. a classifier head, the
            student of an mmsdae run, an MAE decoder the teacher does not
            need).
    """
    path: str
    src_format: str
    parts: Dict[str, StateDict] = field(default_factory=dict)
    unused: List[str] = field(default_factory=list)


def _rename(state: StateDict, rules) -> Tuple[StateDict, List[str]]:
    out, rest = {}, []
    for key, value in state.items():
        for pattern, target in rules:
            if pattern.match(key):
                out[pattern.sub(target, key)] = value
                break
        else:
            rest.append(key)
    return out, rest


def mae_decoder_to_mmpretrain(
        state: StateDict) -> Tuple[StateDict, List[str]]:
    """Rename the official MAE decoder keys of ``state`` to mmpretrain's
    ``MAEPretrainDecoder`` (:data:`MAE_DECODER_TO_MMPRETRAIN`).

    Returns:
        ``(decoder, rest)``: the renamed decoder tensors and the keys of
        ``state`` that are no decoder keys.
    """
    return _rename(state, _DECODER_RULES)


def _where(path: str, config_key: str) -> str:
    return f'{path} ({config_key})'


def read_teacher_checkpoint(path: Optional[str],
                            parts: Sequence[str],
                            prefixes: Optional[Mapping[str, str]] = None,
                            weights_only: bool = True,
                            config_key: str = 'model.teacher.checkpoint'
                            ) -> TeacherState:
    """The tensors of each teacher part in a local checkpoint file.

    Args:
        path: the teacher file (never downloaded).
        parts: the parts the teacher has, a subset of
            :data:`TEACHER_PARTS`; each must be in the file.
        prefixes: part -> key prefix in an mmpretrain-layout file (defaults
            to ``'<part>.'``; e.g. ``dict(backbone='teacher.')`` picks the
            EMA teacher of an mmsdae run).
        weights_only: ``torch.load(weights_only=...)``; ``False`` only for
            trusted files that hold Python objects.
        config_key: the config key that names the file, for the messages.

    Returns:
        :class:`TeacherState`.

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        TeacherCheckpointError: if the file has no recognizable layout, or
            lacks a part (an encoder-only file for a teacher with a decoder
            is refused with a message saying so).
    """
    parts = list(parts)
    unknown_parts = [p for p in parts if p not in TEACHER_PARTS]
    if unknown_parts or not parts:
        raise ValueError(f'teacher parts {parts}: choose among '
                         f'{TEACHER_PARTS}.')
    unknown_prefixes = sorted(set(prefixes or {}) - set(parts))
    if unknown_prefixes:
        raise ValueError(
            f'{config_key.rsplit(".", 1)[0]}.prefixes names {unknown_prefixes}'
            f', which the teacher does not have (its parts: {parts}).')
    if not path:
        raise TeacherCheckpointError(
            f'{config_key} is not set: a frozen teacher needs its weights '
            'from a local checkpoint file (they are never downloaded); set '
            f'it in the config or with --cfg-options {config_key}=<file>.')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'teacher checkpoint not found: {config_key}={path!r}. Teacher '
            'weights are never downloaded: put the file there or point '
            f'{config_key} at it (--cfg-options {config_key}=<file>).')
    try:
        # the official MAE / DeiT training checkpoints keep their argparse
        # options under 'args': a plain attribute bag, safe to rebuild
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = load_checkpoint_file(path, weights_only=weights_only)
        state, _ = unwrap_state_dict(ckpt)
    except ValueError as e:
        if weights_only and 'weights_only=True' in str(e):
            teacher_key = config_key.rsplit('.', 1)[0]
            raise TeacherCheckpointError(
                f'{config_key}: {path} holds Python objects besides tensors '
                'that torch.load(weights_only=True) refuses. If you trust '
                f'the file, set {teacher_key}.weights_only=False. ({e})'
            ) from e
        raise TeacherCheckpointError(f'{config_key}: {e}') from e
    prefixes = {**DEFAULT_PREFIXES, **(prefixes or {})}
    wanted = {part: prefixes[part] for part in parts}
    where = _where(path, config_key)

    # top-level timm ViT keys first: a timm classifier's "head.*" is no
    # mmpretrain "head." prefix
    timm = timm_prefixes(state)
    if '' in timm:
        return _read_timm(path, state, parts, where)
    if any(k.startswith(p) for k in state for p in wanted.values()):
        return _read_prefixed(path, state, wanted, where)
    if any(_MMPRETRAIN_VIT.match(k) for k in state):
        result = TeacherState(path, 'mmpretrain-vit')
        result.parts['backbone'] = dict(state)
        _require(result, parts, where,
                 'it holds the keys of one mmpretrain ViT (no prefix)')
        return result
    hint = ''
    if timm:
        hint = (f' It has timm ViT keys under {timm} only: save that '
                'sub-module on its own, with top-level timm keys.')
    raise TeacherCheckpointError(
        f'{where}: no teacher weights found for the parts {parts} (expected '
        f'keys under {sorted(wanted.values())}, timm ViT keys such as '
        f'blocks.0.attn.qkv.weight, or bare mmpretrain ViT keys; top-level '
        f'names: {sorted({k.split(".")[0] for k in state})[:20]}).' + hint)


def _read_prefixed(path: str, state: StateDict, wanted: Dict[str, str],
                   where: str) -> TeacherState:
    result = TeacherState(path, 'mmpretrain')
    used = set()
    for part, prefix in wanted.items():
        tensors = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
        used.update(prefix + k for k in tensors)
        if tensors:
            result.parts[part] = tensors
    result.unused = sorted(set(state) - used)
    found = ', '.join(f'{p}: "{wanted[p]}*"' for p in result.parts)
    _require(result, list(wanted), where, f'it has {found}')
    return result


def _read_timm(path: str, state: StateDict, parts: Sequence[str],
               where: str) -> TeacherState:
    result = TeacherState(path, 'timm')
    decoder, not_decoder = mae_decoder_to_mmpretrain(state)
    head, encoder_keys = _rename({k: state[k] for k in not_decoder},
                                 _HEAD_RULES)
    encoder, ignored, unknown = timm_to_mmpretrain(
        {k: state[k] for k in encoder_keys}, allow_unknown=True)
    unused = set(ignored) | set(unknown)
    sources = {
        'backbone': (encoder, set(encoder_keys) - unused),
        'neck': (decoder, set(state) - set(not_decoder)),
        'head': (head, set(not_decoder) - set(encoder_keys)),
    }
    for part, (tensors, keys) in sources.items():
        if part in parts and tensors:
            result.parts[part] = tensors
        else:
            unused |= keys
    result.unused = sorted(unused)
    _require(result, parts, where, 'it holds timm ViT keys')
    return result


def _require(result: TeacherState, parts: Sequence[str], where: str,
             found: str) -> None:
    """Refuse a file that lacks a part the teacher has."""
    missing = [p for p in parts if p not in result.parts]
    if not missing:
        return
    if 'neck' in missing and 'backbone' in result.parts:
        raise TeacherCheckpointError(
            f'{where} holds a ViT encoder only ({found}; no MAE decoder '
            'weights: decoder_embed / decoder_blocks / decoder_pred, or '
            '"neck.*"), like the public encoder-only MAE release '
            'mae_pretrain_vit_base.pth. This teacher needs its decoder too '
            '(G2SD distils the hidden state of the MAE decoder); loading '
            'without it would leave the decoder randomly initialised and '
            'the targets meaningless. ' + FULL_MAE_HINT)
    raise TeacherCheckpointError(
        f'{where} has no weights for the teacher part(s) {missing} ({found}'
        '). Point the config at a checkpoint of the whole teacher, or pick '
        'the sub-modules of an mmpretrain-layout file with the teacher\'s '
        '"prefixes" option (e.g. prefixes=dict(backbone="teacher.", '
        'neck="teacher_neck.") for the EMA teacher of an RC-MAE run).')


def describe_unused(keys: Sequence[str]) -> str:
    """``decoder_blocks.* (96), head.* (2)``: unused keys, grouped."""
    return _summarize_keys(keys) or 'none'


__all__ = [
    'DEFAULT_PREFIXES', 'FULL_MAE_HINT', 'MAE_DECODER_TO_MMPRETRAIN',
    'TEACHER_PARTS', 'TIMM_HEAD_TO_MMPRETRAIN', 'TeacherCheckpointError',
    'TeacherState', 'describe_unused', 'mae_decoder_to_mmpretrain',
    'read_teacher_checkpoint'
]
