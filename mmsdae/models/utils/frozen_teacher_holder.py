"""Frozen teachers inside task models (G2SD specific distillation).

The G2SD specific-distillation models are a classifier, a detector and a
segmentor of mmpretrain / mmdet / mmseg that each hold one fine-tuned,
frozen teacher of their task. :class:`FrozenTeacherHolderMixin` gives them
what :class:`~mmsdae.models.algorithms.FrozenTeacherSelfSupervisor` gives
the pre-training distillers: the teacher is built and loaded from its local
file when the model is built, left out of ``init_weights``, and run through
:meth:`~mmsdae.models.utils.TeacherForwardMixin.run_teacher`.
"""
from typing import Optional

from .frozen_teacher import (FrozenTeacher, build_frozen_teacher,
                             detached_frozen_teachers)
from .teacher_forward import TeacherForwardMixin, check_teacher_amp_dtype


class FrozenTeacherHolderMixin(TeacherForwardMixin):
    """Mixin (put it before the mmpretrain / mmdet / mmseg model class) for
    a task model that distils from a :class:`FrozenTeacher`."""

    def add_frozen_teacher(self,
                           name: str,
                           cfg: dict,
                           teacher_amp_dtype: Optional[str] = None,
                           scope: Optional[str] = None) -> FrozenTeacher:
        """Build the teacher ``cfg`` (the config's ``model.<name>``), load
        its file and register it as ``self.<name>``.

        Args:
            name: the attribute (and config key) of the teacher.
            cfg: the :class:`FrozenTeacher` config.
            teacher_amp_dtype: the teacher's autocast dtype under AMP (see
                :class:`TeacherForwardMixin`).
            scope: the registry scope of this model (``'mmdet'``,
                ``'mmseg'``) for a whole-model teacher; ``None`` for
                mmpretrain.
        """
        check_teacher_amp_dtype(teacher_amp_dtype)
        self.teacher_amp_dtype = teacher_amp_dtype
        teacher = build_frozen_teacher(
            cfg, config_key=f'model.{name}', scope=scope)
        self.add_module(name, teacher)
        return teacher

    def init_weights(self) -> None:
        """Initialize the student only; the teacher keeps its loaded
        weights."""
        with detached_frozen_teachers(self):
            super().init_weights()
