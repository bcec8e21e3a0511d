"""Check a checkpoint before resuming from it or loading it.

MMEngine's own errors name neither a bad file nor the cause, and it loads
another architecture's checkpoint with ``strict=False``, silently keeping
random tensors. :func:`check_checkpoint_file` names the bad file,
:func:`resolve_resume_checkpoint` picks (and with ``--resume-fallback``
replaces) the ``--resume`` file, and :func:`check_state_dict_fits` (run by
``CheckpointCompatibilityHook``) refuses a state dict of another model.
"""
import glob
import os.path as osp
import re
from typing import (Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import torch

from .checkpoint import CheckpointFileError, load_checkpoint_file

LAST_CHECKPOINT = 'last_checkpoint'  # written by MMEngine's CheckpointHook
_CKPT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
_MAX_LISTED = 8


class CheckpointMismatchError(ValueError):
    """A checkpoint whose state dict does not fit the model."""


def check_checkpoint_file(path: str, for_resume: bool = True) -> dict:
    """The checkpoint at ``path`` (memory-mapped), checked to hold a
    ``state_dict`` and, ``for_resume``, a ``meta`` with epoch and iter."""
    checkpoint = load_checkpoint_file(path, mmap=True)
    state = checkpoint.get('state_dict')
    if not isinstance(state, Mapping) or not state:
        raise CheckpointFileError(
            path, 'has no state_dict (keys: '
            f'{sorted(map(str, checkpoint))[:_MAX_LISTED]}).')
    meta = checkpoint.get('meta')
    if for_resume and not (isinstance(meta, dict) and 'epoch' in meta
                           and 'iter' in meta):
        raise CheckpointFileError(
            path, 'holds weights only (no meta with epoch and iter), so a '
            'run cannot resume from it; start from it with load_from=...')
    return checkpoint


def list_checkpoints(work_dir: str) -> List[str]:
    """``epoch_*.pth`` and ``iter_*.pth`` in ``work_dir``, newest first
    (modification time, then the number in the name)."""
    found = []
    for path in glob.glob(osp.join(glob.escape(work_dir), '*.pth')):
        match = _CKPT_NAME.match(osp.basename(path))
        if match and osp.isfile(path):
            found.append((osp.getmtime(path), int(match.group(2)), path))
    return [path for *_, path in sorted(found, reverse=True)]


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The path in ``work_dir/last_checkpoint`` (``''`` if it is empty);
    None without that file."""
    save_file = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(save_file):
        return None
    with open(save_file, encoding='utf-8', errors='replace') as f:
        return f.read().strip()


def resolve_resume_checkpoint(work_dir: str,
                              path: Optional[str] = None,
                              fallback: bool = False,
                              log: Callable[[str], None] = print
                              ) -> Optional[str]:
    """The checked checkpoint to resume from: ``path``, or the one named in
    ``work_dir/last_checkpoint`` (None without that file: a new run).

    With ``fallback`` a bad file is replaced by the previous good one
    (:func:`_older`); ``log`` receives every skipped file and the choice.
    """
    candidates = list_checkpoints(work_dir)
    if path is None:
        path = read_last_checkpoint(work_dir)
        if path is None:
            if candidates:
                log(f'{work_dir} has checkpoints but no {LAST_CHECKPOINT}, '
                    'so a new run starts (as in MMEngine); pass --resume '
                    f'PATH to resume from one, e.g. {candidates[0]}.')
            return None
        if not path:
            path = osp.join(work_dir, LAST_CHECKPOINT)
            error = CheckpointFileError(
                path, 'is empty: it should name the last checkpoint.')
        else:
            error = _check_or_none(path)
    else:
        error = _check_or_none(path)
    if error is None:
        return path

    if not fallback:
        hint = (' Restore the file, pass --resume PATH with another '
                'checkpoint, or start a new run without --resume.')
        if any(c != osp.abspath(path) for c in map(osp.abspath, candidates)):
            hint = (' Add --resume-fallback to resume from the previous '
                    f'good checkpoint in {work_dir} instead.')
        reason = error.reason.rstrip('.')
        raise CheckpointFileError(
            error.path, f'{reason}. Cannot resume from it.{hint}')

    log(f'cannot resume from {error}')
    failures = [str(error)]
    for candidate in _older(error.path, candidates, work_dir):
        problem = _check_or_none(candidate)
        if problem is None:
            log(f'--resume-fallback: resuming from {candidate} instead.')
            return candidate
        log(f'--resume-fallback: skipping {problem}')
        failures.append(str(problem))
    raise CheckpointFileError(
        error.path, f'{error.reason.rstrip(".")}. --resume-fallback found '
        f'no good previous checkpoint in {work_dir}; bad files:\n  '
        + '\n  '.join(failures))


def _older(bad: str, candidates: List[str], work_dir: str) -> List[str]:
    """The candidates to fall back to from ``bad``: for an ``epoch_N.pth``
    / ``iter_N.pth`` of ``work_dir``, those of the same kind with a smaller
    N, largest first (a damaged file's modification time says nothing);
    otherwise all of them, newest first."""
    match = _CKPT_NAME.match(osp.basename(bad))
    if not (match and osp.dirname(osp.abspath(bad)) == osp.abspath(work_dir)):
        return [c for c in candidates if osp.abspath(c) != osp.abspath(bad)]
    kind, number = match.group(1), int(match.group(2))
    same_kind = []
    for candidate in candidates:
        other = _CKPT_NAME.match(osp.basename(candidate))
        if other.group(1) == kind and int(other.group(2)) < number:
            same_kind.append((int(other.group(2)), candidate))
    return [c for _, c in sorted(same_kind, reverse=True)]


def _check_or_none(path: str) -> Optional[CheckpointFileError]:
    try:
        check_checkpoint_file(path, for_resume=True)
    except CheckpointFileError as exc:
        return exc
    return None


def _listing(items: List[str]) -> str:
    shown = '; '.join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f' (and {more} more)' if more > 0 else '')


def check_state_dict_fits(model_state: Mapping[str, torch.Tensor],
                          checkpoint_state: Mapping[str, torch.Tensor],
                          strict: bool,
                          path: str = 'the checkpoint',
                          model_name: str = 'the model',
                          resizable: Sequence[str] = ()) -> None:
    """Raise :class:`CheckpointMismatchError` for a tensor of another shape
    or no tensor in common; with ``strict`` (resuming) also for a missing or
    extra tensor. Without it, ``resizable`` position embeddings may have
    another grid (mmpretrain's ViT resizes them)."""
    shapes: List[str] = []
    for key, value in checkpoint_state.items():
        if key in model_state and hasattr(value, 'shape') and tuple(
                value.shape) != tuple(model_state[key].shape):
            target = model_state[key].shape
            if (not strict and key in resizable and len(value.shape) == 3
                    and len(target) == 3 and value.shape[-1] == target[-1]):
                continue
            shapes.append(f'{key}: checkpoint {tuple(value.shape)}, model '
                          f'{tuple(model_state[key].shape)}')
    missing = [k for k in model_state if k not in checkpoint_state]
    unexpected = [k for k in checkpoint_state if k not in model_state]
    disjoint = len(missing) == len(model_state)
    if not (shapes or disjoint or (strict and (missing or unexpected))):
        return

    lines = [f'{path} does not fit {model_name}: it was saved by another '
             'architecture or configuration.']
    if shapes:
        lines.append(f'  {len(shapes)} tensors have another shape: '
                     + _listing(shapes))
    if disjoint:
        lines.append('  no tensor name in common; checkpoint names: '
                     + _listing(list(checkpoint_state)))
        prefixed = sum(f'backbone.{k}' in model_state
                       for k in checkpoint_state)
        if prefixed:
            lines.append(
                f'  {prefixed} of them match with a "backbone." prefix: load '
                "this backbone-only file with model.backbone.init_cfg=dict("
                f"type='Pretrained', checkpoint='{path}').")
    elif strict or shapes:
        if missing:
            lines.append(f'  {len(missing)} model tensors are missing from '
                         'the checkpoint: ' + _listing(missing))
        if unexpected:
            lines.append(f'  {len(unexpected)} checkpoint tensors are not in '
                         'the model: ' + _listing(unexpected))
    lines.append(
        '  Fix: use the config the checkpoint was trained with '
        "(checkpoint['meta']['cfg']), or a checkpoint of this model.")
    raise CheckpointMismatchError('\n'.join(lines))


def strip_prefixes(state: Mapping[str, torch.Tensor],
                   revise_keys: Tuple[Tuple[str, str], ...] = (
                       (r'^module\.', ''), )) -> Dict[str, torch.Tensor]:
    """``state`` with MMEngine's default key revision (``module.``
    dropped), as ``load_checkpoint`` applies it."""
    out = dict(state)
    for pattern, repl in revise_keys:
        out = {re.sub(pattern, repl, k): v for k, v in out.items()}
    return out


__all__ = [
    'CheckpointFileError', 'CheckpointMismatchError', 'check_checkpoint_file',
    'check_state_dict_fits', 'list_checkpoints', 'read_last_checkpoint',
    'resolve_resume_checkpoint', 'strip_prefixes'
]
