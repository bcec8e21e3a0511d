"""Mask R-CNN distilled from a frozen, fine-tuned Mask R-CNN teacher (G2SD
specific distillation, detection). Registered in mmdet's scope; configs
import it with ``custom_imports=dict(imports=['mmsdae',
'mmsdae.models.detectors', ...])`` (``import mmsdae`` alone does not
import mmdet)."""
import contextlib
from typing import Optional

import torch
from mmdet.models.detectors import MaskRCNN
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.logging import MessageHub
from torch import nn

from ..losses import distill_warmup_factor, objectness_weighted_distillation
from ..utils.frozen_teacher_holder import FrozenTeacherHolderMixin


@MODELS.register_module()
class G2SDMaskRCNN(FrozenTeacherHolderMixin, MaskRCNN):
    """mmdet's :class:`MaskRCNN` trained with G2SD's detection distillation
    from a frozen teacher detector (supplementary Sec. 1.2; released
    ``G2SD_det_dis/tools/plain_distill_net.py`` and
    ``detectron2/modeling/distill/adap.py``, config
    ``projects/ViTDet/configs/COCO/distillation/mask_rcnn_vitdet_b2s_100ep``):

    ``L = L_GT + r(i) (alpha L_FPN + beta L_head)``, ``alpha = 0.001``,
    ``beta = 0.1``, ``r(i) = min(i / 500, 1)`` at (0-based) iteration ``i``
    (:func:`distill_warmup_factor`),

    ``L_GT`` the student's Mask R-CNN losses, ``L_FPN`` / ``L_head`` as in
    :func:`objectness_weighted_distillation`, the student's FPN features
    first mapped by a 3x3 conv per level (the released ``ADAP`` adapter).
    The teacher runs its backbone, FPN and RPN head on the student's batch;
    it needs the same pyramid (the FPN widths may differ). Prediction is the
    student's alone.

    Args:
        teacher (dict): the :class:`FrozenTeacher` config, ``dict(
            checkpoint=..., model=dict(type='MaskRCNN', ...))``.
        fpn_weight (float): ``alpha``. Defaults to 0.001.
        head_weight (float): ``beta``. Defaults to 0.1.
        warmup_iters (int): iterations of the linear ramp of the two
            distillation terms. Defaults to 500.
        teacher_amp_dtype (str, optional): see :class:`TeacherForwardMixin`.
        Others: as :class:`MaskRCNN`.
    """

    def __init__(self,
                 backbone: dict,
                 rpn_head: dict,
                 roi_head: dict,
                 train_cfg: dict,
                 test_cfg: dict,
                 teacher: dict,
                 neck: Optional[dict] = None,
                 fpn_weight: float = 0.001,
                 head_weight: float = 0.1,
                 warmup_iters: int = 500,
                 teacher_amp_dtype: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            neck=neck,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not self.with_neck:
            raise ValueError('G2SDMaskRCNN distils the FPN features: the '
                             'student needs a neck.')
        self.fpn_weight = fpn_weight
        self.head_weight = head_weight
        self.warmup_iters = warmup_iters
        teacher = self.add_frozen_teacher(
            'teacher', teacher, teacher_amp_dtype, scope='mmdet')
        if teacher.part_names != ['model'] or not all(
                hasattr(teacher.model, name)
                for name in ('extract_feat', 'rpn_head')):
            raise ValueError(
                'model.teacher: the detection teacher is a whole two-stage '
                "mmdet detector with an RPN (model=dict(type='MaskRCNN', "
                f'...)), got the parts {teacher.part_names}.')
        num_levels = self.rpn_head.prior_generator.num_levels
        teacher_levels = teacher.model.rpn_head.prior_generator.num_levels
        if num_levels != teacher_levels:
            raise ValueError(
                f'model.teacher: its RPN has {teacher_levels} levels, the '
                f'student\'s {num_levels}: they need the same pyramid.')
        self.distill_adapters = nn.ModuleList([
            nn.Conv2d(
                self.rpn_head.in_channels,
                teacher.model.rpn_head.in_channels,
                kernel_size=3,
                padding=1) for _ in range(num_levels)
        ])

    def _teacher_rpn(self, inputs: torch.Tensor):
        model = self.teacher.model
        feats = model.extract_feat(inputs)
        objectness, _ = model.rpn_head(feats)
        return tuple(feats), tuple(objectness)

    @contextlib.contextmanager
    def _capture_student(self):
        """Record the FPN features and RPN outputs of the student's forward
        pass inside mmdet's ``loss`` (which computes them once)."""
        captured = {}

        def keep(key):

            def hook(module, args, output):
                captured[key] = output

            return hook

        handles = [
            self.neck.register_forward_hook(keep('feats')),
            self.rpn_head.register_forward_hook(keep('rpn')),
        ]
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    def distill_factor(self) -> float:
        """``r(i)`` for the current training iteration (MMEngine's message
        hub ``iter``, 0 outside a Runner)."""
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        return distill_warmup_factor(int(iteration or 0), self.warmup_iters)

    def loss(self, batch_inputs: torch.Tensor,
             batch_data_samples: SampleList) -> dict:
        """Mask R-CNN's losses plus ``loss_distill_fpn`` (``r alpha
        L_FPN``) and ``loss_distill_obj`` (``r beta L_head``)."""
        teacher_feats, teacher_obj = self.run_teacher(self._teacher_rpn,
                                                      batch_inputs)
        with self._capture_student() as captured:
            losses = super().loss(batch_inputs, batch_data_samples)
        student_feats = [
            adapter(feat)
            for adapter, feat in zip(self.distill_adapters, captured['feats'])
        ]
        student_obj = captured['rpn'][0]
        fpn_loss, obj_loss = objectness_weighted_distillation(
            student_feats, teacher_feats, student_obj, teacher_obj)
        factor = self.distill_factor()
        losses['loss_distill_fpn'] = factor * self.fpn_weight * fpn_loss
        losses['loss_distill_obj'] = factor * self.head_weight * obj_loss
        return losses
