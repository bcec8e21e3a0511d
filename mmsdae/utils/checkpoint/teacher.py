"""Read a frozen teacher's weights from a local checkpoint file.

:func:`read_teacher_checkpoint` gives one mmpretrain-named state dict per
teacher part (``backbone``, ``neck``, ``head``, or a whole mmdet / mmseg
``model``) from any of these layouts:

* ``'mmpretrain'``: ``backbone.*`` / ``neck.*`` / ``head.*`` (or the
  ``prefixes`` given, e.g. ``backbone='teacher.'`` for an RC-MAE run's EMA
  teacher);
* ``'timm'``: top-level timm ViT names (official MAE training checkpoint,
  the encoder-only release, DeiT / CLIP / DINO backbones), renamed by the
  maps of :mod:`.formats`;
* ``'dino'``: DINO's full checkpoint (its teacher, or
  ``prefixes=dict(backbone='student.')``);
* ``'mmpretrain-vit'``: bare mmpretrain ViT names (the backbone only).

A part the file lacks is refused before anything is built, in particular
the MAE decoder of a G2SD teacher (a random decoder would silently give
meaningless targets).
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
    'Use a full MAE training checkpoint (backbone.* + neck.*, or the official'
    ' one with decoder_* keys), not the mae_pretrain_vit_base.pth release.')


class TeacherCheckpointError(ValueError):
    """A teacher checkpoint that cannot give the teacher all its weights."""


@dataclass
class TeacherState:
    """The tensors of a teacher file per part (no part prefix), its layout
    and the source keys no part takes."""
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
    """The tensors of each of ``parts`` (:data:`TEACHER_PARTS`) in the local
    file ``path``; ``prefixes`` as in the module docstring; ``config_key``
    names the file in the messages."""
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
            f'{config_key} is not set: give the local teacher file '
            f'(--cfg-options {config_key}=<file>).')
    teacher_key = config_key.rsplit('.', 1)[0]
    try:
        ckpt = load_checkpoint_file(
            path, weights_only=weights_only,
            unsafe_fix=f'set {teacher_key}.weights_only=False')
        state, _ = unwrap_state_dict(ckpt)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f'teacher checkpoint not found: {config_key}={path!r} (teacher '
            'weights are never downloaded): put the file there or fix '
            f'{config_key}.') from e
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
        f'keys under {sorted(wanted.values())} or ViT keys; top-level names: '
        f'{top_level(state)[:20]}).' + hint)


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
            f'{where} holds a ViT encoder only ({found}; no MAE decoder), '
            'but this teacher needs its decoder too. ' + FULL_MAE_HINT)
    raise TeacherCheckpointError(
        f'{where} has no weights for the teacher part(s) {missing} ({found}'
        '): use a checkpoint of the whole teacher, or pick its sub-modules '
        'with the teacher\'s "prefixes" option.')


def describe_unused(keys: Sequence[str]) -> str:
    """``decoder_blocks.* (96), head.* (2)``: unused keys, grouped."""
    return summarize_keys(keys)


__all__ = [
    'DEFAULT_PREFIXES', 'FULL_MAE_HINT', 'TEACHER_PARTS',
    'TeacherCheckpointError', 'TeacherState', 'describe_unused',
    'read_teacher_checkpoint'
]
