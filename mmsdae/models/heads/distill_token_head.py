"""The two classifiers of a ViT with a distillation token (G2SD specific
distillation, classification)."""
from typing import List, Tuple

import torch
from mmpretrain.models.heads import DeiTClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..losses import hard_distillation_loss


@MODELS.register_module()
class DistillTokenClsHead(DeiTClsHead):
    """mmpretrain's :class:`DeiTClsHead` (a linear classifier on the class
    token, ``layers.head``, and one on the distillation token,
    ``layers.head_dist``) that also trains.

    * Test (:meth:`forward`, :meth:`predict`): the average of the two
      classifiers' logits, ``(head(cls) + head_dist(dist)) / 2`` (DeiT
      Sec. 5.2; released ``G2SD/models_vit.py``: ``(x + distill_pred) /
      2`` in eval mode).
    * Training (:meth:`loss`): ``(1 - w) CE(head(cls), y) + w
      CE(head_dist(dist), argmax teacher)`` with ``w = distill_weight``
      (0.5: DeiT Eq. 3; released ``G2SD/engine_finetune_dis.py``: ``(loss_gt
      + loss_dis) / 2``). ``y`` is the label or, after mixup / cutmix, the
      mixed soft target, scored by ``loss`` (label smoothing 0.1 in the
      config, as the released ``SoftTargetCrossEntropy`` on timm's smoothed
      mixup targets); the distillation term is a plain cross-entropy to the
      teacher's hard prediction (:func:`hard_distillation_loss`).

    Args:
        distill_weight (float): ``w`` above, in ``[0, 1]``. Defaults to 0.5.
        Others: as :class:`DeiTClsHead` (``num_classes``, ``in_channels``,
            ``loss``, ``init_cfg`` ...).
    """

    def __init__(self, *args, distill_weight: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= distill_weight <= 1.0:
            raise ValueError(
                f'distill_weight={distill_weight}: choose a value in [0, 1] '
                '(0.5: DeiT / G2SD).')
        self.distill_weight = distill_weight

    def logits(self, feats: Tuple) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(head(cls_token), head_dist(dist_token))``."""
        cls_token, dist_token = self.pre_logits(feats)
        return self.layers.head(cls_token), self.layers.head_dist(dist_token)

    def forward(self, feats: Tuple) -> torch.Tensor:
        """The averaged logits of the two classifiers (what is evaluated)."""
        cls_score, dist_score = self.logits(feats)
        return (cls_score + dist_score) / 2

    def loss(self, feats: Tuple, data_samples: List[DataSample],
             teacher_logits: torch.Tensor, **kwargs) -> dict:
        """``loss_cls`` and ``loss_distill`` (already weighted; their sum is
        the training loss).

        Args:
            feats: the backbone output, ``((cls_token, dist_token),)``.
            data_samples: with ``gt_label`` or, after batch mixing,
                ``gt_score``.
            teacher_logits: ``(N, num_classes)`` logits of the frozen
                teacher on the same (mixed) images.
        """
        cls_score, dist_score = self.logits(feats)
        losses = self._get_loss(cls_score, data_samples, **kwargs)
        gt_loss = losses.pop('loss')
        losses['loss_cls'] = (1.0 - self.distill_weight) * gt_loss
        losses['loss_distill'] = self.distill_weight * \
            hard_distillation_loss(dist_score, teacher_logits)
        return losses
