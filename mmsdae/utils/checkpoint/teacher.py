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
  in timm layout, DINO's released backbone (``dino_vitbase16_pretrain.pth``).
  The encoder, the MAE decoder and a classifier ``head.*`` are renamed by
  the maps of :mod:`.formats`.
* ``'dino'``: DINO's full training checkpoint (``teacher`` / ``student``
  with ``backbone.`` / ``module.backbone.`` prefixes): the teacher's backbone
  (or the student's, with ``prefixes=dict(backbone='student.')``).
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
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

from .files import StateDict, load_checkpoint_file, unwrap_state_dict
from .formats import (MMPRETRAIN_VIT, dino_to_timm, is_dino,
                      mae_decoder_to_mmpretrain, summarize_keys,
                      timm_head_to_mmpretrain, timm_prefixes,
                      timm_to_mmpretrain, top_level)

# ``model`` is a whole model (an mmdet detector, an mmseg segmentor: the
# task teachers of G2SD's specific distillation) whose checkpoint keys have
# no part prefix; it is never combined with the other parts.
TEACHER_PARTS = ('backbone', 'neck', 'head', 'model')
DEFAULT_PREFIXES = {
    part: '' if part == 'model' else f'{part}.'
    for part in TEACHER_PARTS
}

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
        src_format: ``'mmpretrain'``, ``'timm'``, ``'dino'`` or
            ``'mmpretrain-vit'``.
        parts: part name -> mmpretrain-named tensors (no part prefix).
        unused: source keys that no part takes (e.g. a classifier head, the
            student of an mmsdae run, an MAE decoder the teacher does not
            need).
    """
    path: str
    src_format: str
    parts: Dict[str, StateDict] = field(default_factory=dict)
    unused: List[str] = field(default_factory=list)


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
            EMA teacher of an mmsdae run); in a DINO full checkpoint
            ``dict(backbone='student.')`` picks the student.
        weights_only: ``torch.load(weights_only=...)``; ``False`` only for
            trusted files that hold Python objects.
        config_key: the config key that names the file, for the messages.

    Returns:
        :class:`TeacherState`.

    Raises:
        FileNotFoundError: if ``path`` is not a file (naming
            ``config_key``).
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
    teacher_key = config_key.rsplit('.', 1)[0]
    try:
        ckpt = load_checkpoint_file(
            path, weights_only=weights_only,
            unsafe_fix=f'set {teacher_key}.weights_only=False')
        state, _ = unwrap_state_dict(ckpt)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f'teacher checkpoint not found: {config_key}={path!r}. Teacher '
            'weights are never downloaded: put the file there or point '
            f'{config_key} at it (--cfg-options {config_key}=<file>).'
        ) from e
    except ValueError as e:  # CheckpointFileError, or no tensors
        raise TeacherCheckpointError(f'{config_key}: {e}') from e
    branch = 'student' if str((prefixes or {}).get('backbone', '')
                              ).startswith('student') else 'teacher'
    prefixes = {**DEFAULT_PREFIXES, **(prefixes or {})}
    wanted = {part: prefixes[part] for part in parts}
    where = _where(path, config_key)

    # top-level timm ViT keys first: a timm classifier's "head.*" is no
    # mmpretrain "head." prefix
    timm = timm_prefixes(state)
    if '' in timm:
        return _read_timm(path, state, parts, where)
    if is_dino(state):
        backbone, ignored = dino_to_timm(state, branch)
        result = _read_timm(path, backbone, parts, where, 'dino')
        result.unused = sorted(result.unused + ignored)
        return result
    if any(k.startswith(p) for k in state for p in wanted.values()):
        return _read_prefixed(path, state, wanted, where)
    if any(MMPRETRAIN_VIT.match(k) for k in state):
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
        f'names: {top_level(state)[:20]}).' + hint)


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
               where: str, src_format: str = 'timm') -> TeacherState:
    result = TeacherState(path, src_format)
    decoder, not_decoder = mae_decoder_to_mmpretrain(state)
    head, encoder_keys = timm_head_to_mmpretrain(
        {k: state[k] for k in not_decoder})
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
    return summarize_keys(keys)


__all__ = [
    'DEFAULT_PREFIXES', 'FULL_MAE_HINT', 'TEACHER_PARTS',
    'TeacherCheckpointError', 'TeacherState', 'describe_unused',
    'read_teacher_checkpoint'
]
