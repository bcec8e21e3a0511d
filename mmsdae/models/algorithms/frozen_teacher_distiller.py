"""The base of the algorithms that distil from frozen pre-trained teachers
(G2SD, Hybrid Distill)."""
from typing import Optional

import torch
from mmpretrain.models import BaseSelfSupervisor

from ..utils.frozen_teacher import FrozenTeacher
from ..utils.frozen_teacher_holder import FrozenTeacherHolderMixin
from ..utils.teacher_forward import check_teacher_amp_dtype


class FrozenTeacherSelfSupervisor(FrozenTeacherHolderMixin,
                                  BaseSelfSupervisor):
    """A self-supervisor whose teachers are trained models, never updated.

    The student is ``backbone`` / ``neck`` / ``head`` as in
    :class:`BaseSelfSupervisor`; each teacher is a :class:`FrozenTeacher`
    (frozen, never saved: see :mod:`mmsdae.models.utils.frozen_teacher`)
    added with :meth:`add_teacher`, so a bad teacher file fails at build
    time, held as in :class:`FrozenTeacherHolderMixin` and run through
    :meth:`run_teacher`.

    Args:
        teacher_amp_dtype (str, optional): the teachers' autocast dtype under
            AMP (see :class:`TeacherForwardMixin`).
        Others: as :class:`BaseSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher_amp_dtype: Optional[str] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        check_teacher_amp_dtype(teacher_amp_dtype)
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.teacher_amp_dtype = teacher_amp_dtype

    def add_teacher(self, name: str, cfg: dict) -> FrozenTeacher:
        """Build the frozen teacher ``cfg`` (the config's ``model.<name>``)
        and register it as ``self.<name>``."""
        return self.add_frozen_teacher(name, cfg, self.teacher_amp_dtype)

    def extract_feat(self, inputs: torch.Tensor):
        """Features of the whole image from the student encoder."""
        return self.backbone(inputs, mask=None)
