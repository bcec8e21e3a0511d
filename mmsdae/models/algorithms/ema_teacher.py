"""The EMA teacher that SdAE (Eq. 7) and RC-MAE (Eq. 2) share; they differ
in the modules copied, the cadence and schedule (:class:`TeacherEMAHook`)
and the losses (the subclasses)."""
import copy
import logging
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from mmpretrain.models import BaseSelfSupervisor
from torch import nn

from ..utils.teacher_forward import (TEACHER_AMP_DTYPES,  # noqa: F401
                                     TeacherForwardMixin,
                                     check_teacher_amp_dtype,
                                     detached_modules)

ENCODERS = ('student', 'teacher')


def compile_encoder_blocks(encoder: nn.Module, **kwargs) -> None:
    """``nn.Module.compile(**kwargs)`` each block of ``encoder.layers`` (an
    mmpretrain ViT) in place: parameter names and checkpoints unchanged."""
    for block in encoder.layers:
        # mmpretrain's ViT stores drop-path rates as numpy floats, which
        # dynamo turns into tensors whose guards fail between the student's
        # grad mode and the teacher's inference mode
        for module in block.modules():
            if isinstance(getattr(module, 'drop_prob', None), np.floating):
                module.drop_prob = float(module.drop_prob)
        block.compile(**kwargs)


class EMATeacherSelfSupervisor(TeacherForwardMixin, BaseSelfSupervisor):
    """A self-supervisor with an EMA teacher.

    Subclasses name the copied modules in :attr:`teacher_of` (student
    attribute -> teacher attribute; the encoder's teacher is always
    ``teacher``, so ``teacher.*`` holds the teacher encoder in every
    checkpoint). The teachers:

    - start as copies of the initialized (or loaded) student;
    - have ``requires_grad=False``, so they are never in the optimizer and
      never receive a gradient, and stay in eval mode (no drop path);
    - change only in :meth:`momentum_update`;
    - are filled from the student when a checkpoint has none (an exported
      encoder, an MAE checkpoint), with a warning.

    The teacher's forward pass runs through :meth:`run_teacher`, the one
    teacher path of every method (:mod:`mmsdae.models.utils.teacher_forward`).

    Args:
        feature_encoder (str): the encoder :meth:`extract_feat` uses,
            ``'student'`` or ``'teacher'``.
        teacher_amp_dtype (str, optional): the teacher's autocast dtype
            under AMP (see :class:`TeacherForwardMixin`).
        compile_blocks (bool | dict): ``nn.Module.compile`` every block of
            the student and teacher encoders (a dict: ``torch.compile``
            arguments); off by default (minutes to compile a ViT-B).
        Others: as :class:`BaseSelfSupervisor`.
    """

    teacher_of: Dict[str, str] = {'backbone': 'teacher'}
    #: the hook that updates the teacher; ``tools/train.py`` refuses a config
    #: without it (utils/preflight.check_teacher_updates)
    ema_hook: str = ("dict(type='TeacherEMAHook', momentum=..., "
                     'end_momentum=...)')

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 feature_encoder: str = 'student',
                 teacher_amp_dtype: Optional[str] = None,
                 compile_blocks: Union[bool, dict] = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if feature_encoder not in ENCODERS:
            raise ValueError(f'feature_encoder={feature_encoder!r}: choose '
                             f'one of {ENCODERS}.')
        check_teacher_amp_dtype(teacher_amp_dtype)
        if not isinstance(compile_blocks, (bool, dict)):
            raise TypeError(
                f'compile_blocks={compile_blocks!r}: use True, False or a '
                'dict of torch.compile arguments.')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.feature_encoder = feature_encoder
        self.teacher_amp_dtype = teacher_amp_dtype
        self.compile_blocks = compile_blocks
        # EMA updates so far; in the state dict, so it survives resume
        self.register_buffer('teacher_updates', torch.zeros((),
                                                            dtype=torch.long))
        self.register_load_state_dict_pre_hook(self._fill_missing_teacher)

    def build_teachers(self) -> None:
        """Create the teacher copies; call at the end of ``__init__``, after
        the student has been checked."""
        for student_name, teacher_name in self.teacher_of.items():
            teacher = copy.deepcopy(getattr(self, student_name))
            teacher.requires_grad_(False)
            teacher.eval()
            setattr(self, teacher_name, teacher)
        if self.compile_blocks:
            self._compile_encoder_blocks()

    def _compile_encoder_blocks(self) -> None:
        """``nn.Module.compile`` each block of the student and teacher
        encoders (after the teacher copy: a compiled module is not copied)."""
        kwargs = {} if self.compile_blocks is True else dict(
            self.compile_blocks)
        for encoder in (self.backbone, self.teacher):
            compile_encoder_blocks(encoder, **kwargs)

    def teacher_pairs(self) -> List[Tuple[nn.Module, nn.Module]]:
        """``(teacher, student)`` module pairs, in :attr:`teacher_of`
        order."""
        return [(getattr(self, t), getattr(self, s))
                for s, t in self.teacher_of.items()]

    def init_weights(self) -> None:
        """Initialize the student, then start each teacher as its copy.

        The teachers are left out of the initialization itself, so the
        student draws the same random numbers as the same model without a
        teacher (an RC-MAE student starts as its MAE twin with the same
        seed).
        """
        teachers = [getattr(self, name) for name in self.teacher_of.values()]
        with detached_modules(self,
                              lambda m: any(m is t for t in teachers)):
            super().init_weights()
        for teacher, student in self.teacher_pairs():
            teacher.load_state_dict(student.state_dict())

    @staticmethod
    def _fill_missing_teacher(module, state_dict, prefix, *args) -> None:
        """Load hook: a checkpoint with a student but no teacher starts the
        teacher as the loaded student (the teacher starts as a copy of the
        student in both papers)."""
        for student_name, teacher_name in module.teacher_of.items():
            teacher = f'{prefix}{teacher_name}.'
            student = f'{prefix}{student_name}.'
            if any(k.startswith(teacher) for k in state_dict):
                continue
            copied = [k for k in list(state_dict) if k.startswith(student)]
            for key in copied:
                state_dict[teacher + key[len(student):]] = state_dict[key]
            if copied:
                print_log(
                    f'the checkpoint has no "{teacher_name}" weights: the '
                    f'teacher starts as a copy of the loaded student '
                    f'({len(copied)} "{student}*" tensors).',
                    logger='current',
                    level=logging.WARNING)

    def train(self, mode: bool = True) -> 'EMATeacherSelfSupervisor':
        """Switch the student; the teachers stay in eval mode (no drop path,
        no dropout)."""
        super().train(mode)
        for teacher, _ in self.teacher_pairs():
            teacher.eval()
        return self

    @torch.no_grad()
    def momentum_update(self, momentum: float) -> None:
        """``teacher <- momentum * teacher + (1 - momentum) * student``
        (SdAE Eq. 7, RC-MAE Eq. 2: ``momentum`` weights the OLD value, unlike
        mmengine's EMA); float buffers averaged, others copied."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'EMA momentum {momentum} is outside [0, 1].')
        for teacher, student in self.teacher_pairs():
            student_state = student.state_dict()
            for name, value in teacher.state_dict().items():
                if value.dtype.is_floating_point:
                    value.lerp_(student_state[name].to(value.dtype),
                                1.0 - momentum)
                else:
                    value.copy_(student_state[name])
        self.teacher_updates += 1

    def extract_feat(self, inputs: torch.Tensor):
        """Features of the whole image from ``feature_encoder``."""
        encoder = self.backbone if self.feature_encoder == 'student' \
            else self.teacher
        return encoder(inputs, mask=None)
