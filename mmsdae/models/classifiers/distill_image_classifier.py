"""An image classifier that distils from a frozen, fine-tuned classifier
(G2SD specific distillation, classification)."""
from typing import List, Optional

import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.frozen_teacher_holder import FrozenTeacherHolderMixin


@MODELS.register_module()
class DistillImageClassifier(FrozenTeacherHolderMixin, ImageClassifier):
    """mmpretrain's :class:`ImageClassifier` with a frozen teacher
    classifier whose hard predictions train the student's distillation
    head (DeiT hard distillation; the classification stage of G2SD's
    specific distillation, supplementary Sec. 1.1 and Table 1).

    The student is ``backbone`` (e.g. :class:`DistilledViT`, class and
    distillation tokens) + ``head`` (:class:`DistillTokenClsHead`: the two
    losses in training, the averaged classifiers at test time). The
    teacher (``teacher``: a :class:`FrozenTeacher` with ``backbone`` and
    ``head``, e.g. an MAE ViT-B fine-tuned on ImageNet, the official
    ``mae_finetuned_vit_base.pth`` in timm layout) classifies the images
    the student sees, *after* mixup / cutmix, as the released
    ``engine_finetune_dis.py`` does; test-time prediction does not run it.

    Args:
        teacher (dict): the :class:`FrozenTeacher` config (``checkpoint``,
            ``backbone``, ``head``).
        teacher_amp_dtype (str, optional): the teacher's autocast dtype under
            AMP (see :class:`TeacherForwardMixin`).
        Others: as :class:`ImageClassifier`.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 teacher: dict,
                 neck: Optional[dict] = None,
                 teacher_amp_dtype: Optional[str] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            train_cfg=train_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not hasattr(self.head, 'logits'):
            raise TypeError(
                f'model.head: {type(self.head).__name__} has one classifier; '
                'DistillImageClassifier needs a head with a distillation '
                "classifier, e.g. dict(type='DistillTokenClsHead', ...).")
        teacher = self.add_frozen_teacher('teacher', teacher,
                                          teacher_amp_dtype)
        if 'backbone' not in teacher.part_names \
                or 'head' not in teacher.part_names:
            raise ValueError(
                'model.teacher: a classification teacher needs a backbone and '
                f'a head, got {teacher.part_names}.')
        classes = getattr(teacher.head, 'num_classes', None)
        if classes is not None and classes != self.head.num_classes:
            raise ValueError(
                f'model.teacher: its head predicts {classes} classes, the '
                f'student {self.head.num_classes}: the distillation head '
                "learns the teacher's hard predictions, so both need the "
                'same classes (set model.teacher.head.num_classes to what '
                'the teacher file was fine-tuned with, and the student '
                'head to the same).')

    def _teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        teacher = self.teacher
        feats = teacher.backbone(inputs)
        if getattr(teacher, 'neck', None) is not None:
            feats = teacher.neck(feats)
        return teacher.head(feats)

    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's logits, ``(N, num_classes)``, float32, no graph."""
        return self.run_teacher(self._teacher_logits, inputs)

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """``loss_cls`` (to the labels / mixed targets) and ``loss_distill``
        (to the teacher's hard prediction), each weighted 1/2."""
        teacher_logits = self.teacher_logits(inputs)
        feats = self.extract_feat(inputs)
        return self.head.loss(feats, data_samples, teacher_logits)
