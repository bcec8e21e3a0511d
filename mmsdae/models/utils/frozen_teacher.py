"""Frozen pre-trained teachers (G2SD, Hybrid Distill).

A :class:`FrozenTeacher` holds the parts of a trained model (or a whole
mmdet / mmseg model) filled from a local file by
:func:`mmsdae.utils.checkpoint.read_teacher_checkpoint`. It stays in eval
mode, has ``requires_grad=False`` (the optimizer and DDP never see it), is
kept out of ``init_weights`` (:func:`detached_frozen_teachers`) and out of
the run's checkpoints: only its ``fingerprint`` (elements, sum, sum of
squares, float64) is saved, and a resumed checkpoint whose fingerprint
differs is an error. Every tensor must come from the file, except the
``allow_missing`` patterns.
"""
import fnmatch
import logging
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from torch import nn

from mmsdae.utils.checkpoint import (TEACHER_PARTS, TeacherCheckpointError,
                                     describe_unused, read_teacher_checkpoint)
from .teacher_forward import detached_modules

FINGERPRINT = 'fingerprint'


@MODELS.register_module()
class FrozenTeacher(nn.Module):
    """A trained model used as a teacher: loaded, frozen, never saved.

    Args:
        checkpoint (str): the local teacher file (never downloaded).
        backbone, neck, head (dict, optional): configs of the teacher's
            parts (at least one), e.g. ``backbone=dict(type='SdAEViT',
            arch='b', ...)`` and ``neck=dict(type='MAEPretrainDecoder',
            ...)`` for a full MAE. Their ``init_cfg`` is ignored.
        model (dict, optional): instead of the parts, a whole model taking
            every key of the file (G2SD's detector / segmentor teachers,
            e.g. ``dict(type='mmdet.MaskRCNN', ...)``).
        prefixes (dict, optional): part -> key prefix in an
            mmpretrain-layout file (default ``'<part>.'``); e.g.
            ``dict(backbone='teacher.', neck='teacher_neck.')`` takes the EMA
            teacher of an RC-MAE run.
        allow_missing (Sequence[str]): ``fnmatch`` patterns of part-qualified
            keys (``'neck.decoder_pred.*'``) that may stay initial.
        weights_only (bool): ``torch.load(weights_only=...)``; set False only
            for a trusted file that holds Python objects.
        config_key (str): where the teacher sits in the config, for the
            messages (set by the algorithm).
    """

    def __init__(self,
                 checkpoint: str,
                 backbone: Optional[dict] = None,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 model: Optional[dict] = None,
                 prefixes: Optional[Mapping[str, str]] = None,
                 allow_missing: Sequence[str] = (),
                 weights_only: bool = True,
                 config_key: str = 'model.teacher') -> None:
        super().__init__()
        cfgs = dict(backbone=backbone, neck=neck, head=head, model=model)
        self.part_names: List[str] = [
            name for name in TEACHER_PARTS if cfgs[name] is not None
        ]
        if not self.part_names:
            raise ValueError(f'{config_key}: a teacher needs at least one of '
                             f'{TEACHER_PARTS}.')
        if model is not None and len(self.part_names) > 1:
            raise ValueError(f'{config_key}: give model=... or parts, not '
                             f'both: {self.part_names}.')
        if isinstance(allow_missing, str):
            allow_missing = [allow_missing]
        self.checkpoint = checkpoint
        self.config_key = config_key
        self.allow_missing = list(allow_missing)
        for name in self.part_names:
            cfg = dict(cfgs[name])
            cfg.pop('init_cfg', None)
            setattr(self, name, MODELS.build(cfg))
        self.load_report = self._load(prefixes, weights_only)
        self.requires_grad_(False)
        self.eval()
        self.register_buffer(FINGERPRINT, self.compute_fingerprint())
        self.register_state_dict_post_hook(_drop_teacher_weights)
        self.register_load_state_dict_pre_hook(_keep_teacher_weights)

    # --- loading ------------------------------------------------------------

    def _load(self, prefixes, weights_only) -> dict:
        key = f'{self.config_key}.checkpoint'
        source = read_teacher_checkpoint(
            self.checkpoint,
            self.part_names,
            prefixes=prefixes,
            weights_only=weights_only,
            config_key=key)
        where = f'{self.checkpoint} ({key})'
        missing, mismatched = [], []
        for name in self.part_names:
            tensors = source.parts[name]
            target = getattr(self, name).state_dict()
            for k in sorted(set(target) - set(tensors)):
                qualified = f'{name}.{k}'
                if not any(fnmatch.fnmatchcase(qualified, pattern)
                           for pattern in self.allow_missing):
                    missing.append(qualified)
            for k in sorted(set(target) & set(tensors)):
                if tuple(target[k].shape) != tuple(tensors[k].shape):
                    mismatched.append(
                        f'{name}.{k}: checkpoint {tuple(tensors[k].shape)}, '
                        f'teacher {tuple(target[k].shape)}')
        if mismatched:
            raise TeacherCheckpointError(
                f'{where}: {len(mismatched)} tensor(s) have another shape: '
                + '; '.join(mismatched[:8]) + '. Set ' + self.config_key +
                ' to the architecture the checkpoint was trained with.')
        if missing:
            raise TeacherCheckpointError(
                f'{where} lacks {len(missing)} tensor(s) of the teacher '
                f'(they would stay random): {", ".join(missing[:12])}. Match '
                f'{self.config_key} to the checkpoint, or list them in '
                f'{self.config_key}.allow_missing.')
        unexpected = []
        for name in self.part_names:
            result = getattr(self, name).load_state_dict(
                source.parts[name], strict=False)
            unexpected += [f'{name}.{k}' for k in result.unexpected_keys]
        unused = source.unused + unexpected
        report = dict(
            path=self.checkpoint,
            src_format=source.src_format,
            parts=list(self.part_names),
            num_tensors=sum(len(t) for t in source.parts.values()),
            unused=unused)
        print_log(
            f'{self.config_key}: loaded {self.part_names} from '
            f'{self.checkpoint} ({source.src_format} layout, '
            f'{report["num_tensors"]} tensors); not used: '
            f'{describe_unused(unused)}',
            logger='current',
            level=logging.WARNING if unexpected else logging.INFO)
        return report

    @torch.no_grad()
    def compute_fingerprint(self) -> torch.Tensor:
        """``[elements, sum, sum of squares]`` of the parts' float tensors
        (float64, CPU)."""
        count, total, squares = 0, 0.0, 0.0
        for name in self.part_names:
            for value in getattr(self, name).state_dict().values():
                if not value.is_floating_point():
                    continue
                value = value.detach().to('cpu', torch.float64)
                count += value.numel()
                total += float(value.sum())
                squares += float((value * value).sum())
        return torch.tensor([count, total, squares], dtype=torch.float64)

    def teacher_state_dict(self) -> Dict[str, torch.Tensor]:
        """The teacher's weights (``state_dict()`` leaves them out), with
        part prefixes: ``backbone.*``, ``neck.*`` ..."""
        state = {}
        for name in self.part_names:
            for key, value in getattr(self, name).state_dict().items():
                state[f'{name}.{key}'] = value
        return state

    # --- frozen -------------------------------------------------------------

    def train(self, mode: bool = True) -> 'FrozenTeacher':
        """Stay in eval mode: a frozen teacher has no training mode."""
        return super().train(False)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            'call the parts of a FrozenTeacher through run_teacher.')

    def extra_repr(self) -> str:
        return f'checkpoint={self.checkpoint!r}, frozen'


def _drop_teacher_weights(module: FrozenTeacher, state_dict, prefix: str,
                          local_metadata) -> None:
    """``state_dict()`` hook: keep only the fingerprint of the teacher."""
    keep = prefix + FINGERPRINT
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key != keep:
            del state_dict[key]


def _keep_teacher_weights(module: FrozenTeacher, state_dict, prefix: str,
                          local_metadata, strict, missing_keys,
                          unexpected_keys, error_msgs) -> None:
    """``load_state_dict()`` pre-hook: check the fingerprint, then fill in
    the teacher's current (never saved) tensors."""
    key = prefix + FINGERPRINT
    saved = state_dict.get(key)
    own = getattr(module, FINGERPRINT)
    if torch.is_tensor(saved) and saved.shape == own.shape \
            and not torch.allclose(saved.to('cpu', torch.float64),
                                   own.to('cpu', torch.float64),
                                   rtol=1e-9, atol=1e-6):
        raise TeacherCheckpointError(
            f'the checkpoint was written with another teacher than '
            f'{module.checkpoint} (fingerprint {saved.tolist()}, now '
            f'{own.tolist()}): point {module.config_key}.checkpoint at the '
            'file the run was trained with.')
    for name, value in module.teacher_state_dict().items():
        state_dict[prefix + name] = value
    state_dict[key] = own


def build_frozen_teacher(cfg: dict,
                         checkpoint: Optional[str] = None,
                         config_key: str = 'model.teacher',
                         scope: Optional[str] = None) -> FrozenTeacher:
    """Build a :class:`FrozenTeacher` from a config dict.

    ``checkpoint`` overrides ``cfg['checkpoint']``; ``scope`` (``'mmdet'``,
    ``'mmseg'``) is where an unscoped whole-model ``model=...`` is looked
    up, the teacher itself being built in mmpretrain's scope.
    """
    if isinstance(cfg, FrozenTeacher):
        return cfg
    if not isinstance(cfg, Mapping):
        raise TypeError(f'{config_key} must be a dict (a FrozenTeacher '
                        f'config), got {type(cfg).__name__}.')
    cfg = dict(cfg)
    cfg.setdefault('type', 'FrozenTeacher')
    if checkpoint is not None:
        cfg['checkpoint'] = checkpoint
    if 'checkpoint' not in cfg:
        raise TeacherCheckpointError(
            f'{config_key}.checkpoint is not set: give the local teacher '
            'file.')
    cfg['config_key'] = config_key
    if scope is None:
        teacher = MODELS.build(cfg)
    else:
        if isinstance(cfg.get('model'), Mapping) \
                and '.' not in str(cfg['model'].get('type', '')):
            cfg['model'] = dict(cfg['model'])
            cfg['model'].setdefault('_scope_', scope)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            teacher = MODELS.build(cfg)
    if not isinstance(teacher, FrozenTeacher):
        raise TypeError(f'{config_key}.type={cfg["type"]!r} builds a '
                        f'{type(teacher).__name__}, not a FrozenTeacher.')
    return teacher


def frozen_teachers(model: nn.Module) -> Iterator[FrozenTeacher]:
    """Every :class:`FrozenTeacher` inside ``model``."""
    return (m for m in model.modules() if isinstance(m, FrozenTeacher))


def detached_frozen_teachers(model: nn.Module):
    """Take every :class:`FrozenTeacher` out of ``model`` for the block
    (around ``init_weights``), see :func:`detached_modules`."""
    return detached_modules(model, lambda m: isinstance(m, FrozenTeacher))
