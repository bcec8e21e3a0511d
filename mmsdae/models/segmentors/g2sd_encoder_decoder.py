"""A segmentor distilled from a frozen, fine-tuned segmentor teacher (G2SD
specific distillation, semantic segmentation). Registered in mmseg's
scope; configs import it with ``custom_imports=dict(imports=['mmsdae',
'mmsdae.models.segmentors', ...])`` (``import mmsdae`` alone does not import
mmseg)."""
from typing import Optional

import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import add_prefix

from ..losses import channel_wise_divergence
from ..utils.frozen_teacher_holder import FrozenTeacherHolderMixin


@MODELS.register_module()
class G2SDEncoderDecoder(FrozenTeacherHolderMixin, EncoderDecoder):
    """mmseg's :class:`EncoderDecoder` (UperNet in G2SD) trained with
    channel-wise distillation of its logits from a frozen teacher
    segmentor (supplementary Sec. 1.3: "temperature tau = 1, loss weight
    alpha = 3 for the logits map distillation"; released
    ``G2SD_seg_dis/src/distillation/losses/cwd.py`` and
    ``configs/distill/distill_cwd*.py``, which hook ``decode_head.conv_seg``
    of both models):

    ``L = L_decode + L_aux + alpha CWD_tau(s, t)``

    with ``s`` / ``t`` the student's / teacher's decode-head logits (the
    ``conv_seg`` output, before upsampling) and ``CWD`` the channel-wise
    divergence (:func:`channel_wise_divergence`). One released config
    (``distill_cwd.py``) sets the weight to 10; the default follows the
    supplementary (3).

    The teacher (a :class:`FrozenTeacher` with a whole mmseg ``model``)
    runs backbone, neck and decode head on the student's batch; it needs
    the same classes and output stride. Prediction is the student's alone.

    Args:
        teacher (dict): the :class:`FrozenTeacher` config, ``dict(
            checkpoint=..., model=dict(type='EncoderDecoder', ...))``.
        cwd_tau (float): the temperature. Defaults to 1.0.
        cwd_weight (float): ``alpha``. Defaults to 3.0.
        teacher_amp_dtype (str, optional): see :class:`TeacherForwardMixin`.
        Others: as :class:`EncoderDecoder`.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 teacher: dict,
                 neck: Optional[dict] = None,
                 auxiliary_head: Optional[dict] = None,
                 cwd_tau: float = 1.0,
                 cwd_weight: float = 3.0,
                 teacher_amp_dtype: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg)
        if cwd_tau <= 0:
            raise ValueError(f'cwd_tau={cwd_tau} must be > 0 (G2SD: 1).')
        self.cwd_tau = cwd_tau
        self.cwd_weight = cwd_weight
        teacher = self.add_frozen_teacher(
            'teacher', teacher, teacher_amp_dtype, scope='mmseg')
        if teacher.part_names != ['model'] or not all(
                hasattr(teacher.model, name)
                for name in ('extract_feat', 'decode_head')):
            raise ValueError(
                'model.teacher: the segmentation teacher is a whole mmseg '
                "segmentor (model=dict(type='EncoderDecoder', ...)), got the "
                f'parts {teacher.part_names}.')
        if teacher.model.decode_head.num_classes != \
                self.decode_head.num_classes:
            raise ValueError(
                f'model.teacher: {teacher.model.decode_head.num_classes} '
                f'classes, the student {self.decode_head.num_classes}.')

    def _teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        model = self.teacher.model
        return model.decode_head(model.extract_feat(inputs))

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """The decode (and auxiliary) losses of :class:`EncoderDecoder`
        plus ``loss_cwd`` (``alpha CWD_tau``)."""
        teacher_logits = self.run_teacher(self._teacher_logits, inputs)
        x = self.extract_feat(inputs)
        # what decode_head.loss() does, keeping the logits
        student_logits = self.decode_head(x)
        losses = add_prefix(
            self.decode_head.loss_by_feat(student_logits, data_samples),
            'decode')
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        losses['loss_cwd'] = self.cwd_weight * channel_wise_divergence(
            student_logits, teacher_logits, self.cwd_tau)
        return losses
