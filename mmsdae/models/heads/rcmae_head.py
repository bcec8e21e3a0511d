"""RC-MAE's loss (RC-MAE paper Eq. 6)."""
from typing import Dict

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import MAEPretrainHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class RCMAEHead(MAEPretrainHead):
    """Reconstruction + consistency over the student's masked patches.

    Eq. 6: ``1/|M| sum_{i in M} (||X~_i - Y^_i||^2 + gamma ||Y^_i -
    Y^'_i||^2)``, with ``X~`` the (per-patch normalized, ``norm_pix=True``)
    pixel target, ``Y^`` the student's and ``Y^'`` the teacher's
    reconstruction. Both squared norms are averaged over the ``P * P * C``
    values of a patch, as MAE's loss (mmpretrain's
    :class:`PixelReconstructionLoss`) does: a constant factor against the
    written sums. The reconstruction term is :class:`MAEPretrainHead`'s
    loss unchanged; the teacher's reconstruction is a constant (no gradient
    flows into the teacher).

    Args:
        consistency_weight (float): gamma, the weight of the consistency
            term. Defaults to 1 (Eq. 6).
        Others: as :class:`MAEPretrainHead`.
    """

    def __init__(self, consistency_weight: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if consistency_weight < 0:
            raise ValueError(f'consistency_weight={consistency_weight} must '
                             'be >= 0 (Eq. 6 uses 1).')
        self.consistency_weight = consistency_weight

    def loss(self, pred: torch.Tensor, teacher_pred: torch.Tensor,
             inputs: torch.Tensor,
             mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Eq. 6 split into its two terms (their sum is the loss).

        Args:
            pred: student reconstruction (B, N, P * P * C).
            teacher_pred: teacher reconstruction (B, N, P * P * C).
            inputs: images (B, C, H, W).
            mask: (B, N), 1 on the student's masked patches M.

        Returns:
            ``loss_rec`` (first term), ``loss_cons`` (gamma x second) and,
            for the logs only, ``cos_sim``: the mean cosine similarity of the
            student's and the teacher's reconstruction of a masked patch.
        """
        if teacher_pred.shape != pred.shape:
            raise ValueError(
                f'teacher reconstruction {tuple(teacher_pred.shape)} and '
                f'student reconstruction {tuple(pred.shape)} differ: the '
                'teacher must be a copy of the student decoder.')
        loss_rec = super().loss(pred, inputs, mask)
        loss_cons = self.loss_module(pred, teacher_pred.detach(), mask)
        with torch.no_grad():
            cos = F.cosine_similarity(pred.float(), teacher_pred.float(),
                                      dim=-1)
            cos_sim = (cos * mask).sum() / mask.sum()
        return dict(
            loss_rec=loss_rec,
            loss_cons=self.consistency_weight * loss_cons,
            cos_sim=cos_sim)
