"""Frozen pre-trained teachers (G2SD, Hybrid Distill).

A :class:`FrozenTeacher` holds the parts of a trained model (``backbone``,
``neck``, ``head``; mmpretrain modules built from configs), or a whole
trained model (``model``: the mmdet / mmseg task teachers of G2SD's
specific distillation), and fills them from a local checkpoint file when
it is built
(:func:`mmsdae.utils.checkpoint.read_teacher_checkpoint` reads the
mmpretrain, official-MAE / timm and bare mmpretrain-ViT layouts). Then it

- is in eval mode for good: :meth:`FrozenTeacher.train` keeps it there (no
  drop path, no dropout), whatever mode its parent is switched to;
- has ``requires_grad=False`` everywhere, so the optimizer
  (``TrainableOptimWrapperConstructor`` leaves such parameters out) and DDP
  (which only reduces gradients of parameters that require them) never see
  it, and no gradient reaches it;
- is never re-initialized: the algorithms take it out of the module tree
  while ``init_weights`` runs (:func:`detached_frozen_teachers`), so neither
  an ``init_cfg`` of the parent (Xavier on every ``Linear`` ...) nor the
  parts' own ``init_weights`` overwrite the loaded weights;
- is not stored in the distillation run's checkpoints. Its weights are the
  file's and never change, so they are left out of ``state_dict()`` (a
  ViT-B MAE with its decoder is 112 M parameters, more than the whole ViT-S
  student with its AdamW state) and come back from the teacher file when
  the run is resumed. Only ``fingerprint`` is stored (element count, sum
  and sum of squares of the teacher's tensors, float64): loading a
  checkpoint whose fingerprint differs means the teacher file changed since
  the checkpoint was written, and is an error. Loading a checkpoint never
  changes the teacher, even one that holds teacher weights.

Every tensor of every part must come from the file: a missing one is an
error naming the keys (a frozen teacher is never trained, so it would keep
its random initial value); ``allow_missing`` lists keys that may stay
initial on purpose. Keys of the file no part takes are reported.
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
        model (dict, optional): instead of the parts, a whole model that
            takes every key of an MMEngine checkpoint (no prefix): the
            fine-tuned detector / segmentor teachers of G2SD's specific
            distillation, e.g. ``dict(type='mmdet.MaskRCNN', ...)`` (or
            ``_scope_='mmdet'``; :func:`build_frozen_teacher` sets the
            caller's scope). Its ``init_cfg`` is ignored too.
        prefixes (dict, optional): part -> key prefix in an
            mmpretrain-layout file (default ``'<part>.'``); e.g.
            ``dict(backbone='teacher.', neck='teacher_neck.')`` takes the EMA
            teacher of an RC-MAE run.
        allow_missing (Sequence[str]): ``fnmatch`` patterns of part-qualified
            keys (``'neck.decoder_pred.*'``) that may be absent from the
            file and keep their initial values. Empty by default: every
            missing key is an error.
        weights_only (bool): ``torch.load(weights_only=...)``; set False only
            for a trusted file that holds Python objects.
        config_key (str): where the teacher sits in the config, for the
            messages (set by the algorithm).

    Raises:
        FileNotFoundError: if ``checkpoint`` is not a file.
        TeacherCheckpointError: if the file lacks a part, lacks any tensor
            of a part (not in ``allow_missing``), or has a tensor of another
            shape.
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
            raise ValueError(
                f'{config_key}: give either the whole model (model=...) or '
                f'its parts (backbone / neck / head), not both: '
                f'{self.part_names}.')
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
                f'{where} does not fit the teacher of the config: '
                f'{len(mismatched)} tensor(s) have another shape: ' +
                '; '.join(mismatched[:8]) +
                ('; ...' if len(mismatched) > 8 else '') +
                f'. Set {self.config_key} (arch, widths, depth, image / '
                'patch size) to the architecture the checkpoint was trained '
                'with.')
        if missing:
            raise TeacherCheckpointError(
                f'{where} lacks {len(missing)} tensor(s) of the teacher: ' +
                ', '.join(missing[:12]) +
                (f', ... ({len(missing) - 12} more)'
                 if len(missing) > 12 else '') +
                '. A frozen teacher is never trained, so they would keep '
                'their random initial values. Check that the teacher config '
                f'({self.config_key}) matches the checkpoint (depth, final '
                'norm, decoder); to keep some at their initial values on '
                f'purpose, list them in {self.config_key}.allow_missing '
                "(fnmatch patterns such as 'head.*').")
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
        """``[elements, sum, sum of squares]`` of the parts' tensors in
        float64 on the CPU: what identifies the teacher weights in the
        distillation checkpoints."""
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
            'a FrozenTeacher is not called itself: the algorithm runs its '
            f'parts ({", ".join(self.part_names)}) through run_teacher.')

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
    """``load_state_dict()`` pre-hook: check the fingerprint, then give
    every teacher tensor its current value, so that loading neither
    reports the teacher's (never saved) weights as missing nor changes
    them."""
    key = prefix + FINGERPRINT
    saved = state_dict.get(key)
    own = getattr(module, FINGERPRINT)
    if torch.is_tensor(saved) and saved.shape == own.shape \
            and not torch.allclose(saved.to('cpu', torch.float64),
                                   own.to('cpu', torch.float64),
                                   rtol=1e-9, atol=1e-6):
        raise TeacherCheckpointError(
            f'the checkpoint was written with another teacher than '
            f'{module.checkpoint} ({module.config_key}.checkpoint): the '
            'teacher fingerprints (elements, sum, sum of squares) differ: '
            f'{saved.tolist()} in the checkpoint, {own.tolist()} now. The '
            'teacher file changed since: point '
            f'{module.config_key}.checkpoint at the file the run was '
            'trained with.')
    for name, value in module.teacher_state_dict().items():
        state_dict[prefix + name] = value
    state_dict[key] = own


def build_frozen_teacher(cfg: dict,
                         checkpoint: Optional[str] = None,
                         config_key: str = 'model.teacher',
                         scope: Optional[str] = None) -> FrozenTeacher:
    """Build a :class:`FrozenTeacher` from a config dict.

    Args:
        cfg: ``dict(backbone=..., neck=..., checkpoint=..., ...)`` (the
            arguments of :class:`FrozenTeacher`; ``type`` defaults to
            ``'FrozenTeacher'``).
        checkpoint: overrides ``cfg['checkpoint']``.
        config_key: where ``cfg`` sits in the config, for the messages.
        scope: the registry scope of the calling model when it is not
            mmpretrain's (``'mmdet'``, ``'mmseg'``): the teacher is then
            built in mmpretrain's scope (where ``FrozenTeacher`` is
            registered), and a whole-model teacher (``model=...``) whose
            type names no scope is looked up in ``scope``.
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
            f'{config_key}.checkpoint is not set: a frozen teacher needs its '
            'weights from a local file (they are never downloaded).')
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
    """Take every :class:`FrozenTeacher` out of ``model``'s module tree for
    the duration of the block, e.g. around ``init_weights`` so that no
    initializer touches the loaded teacher weights; the module order is
    restored afterwards (:func:`detached_modules`)."""
    return detached_modules(model, lambda m: isinstance(m, FrozenTeacher))
