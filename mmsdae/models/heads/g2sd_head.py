"""The feature-prediction head and loss of G2SD generic distillation."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn


@MODELS.register_module()
class G2SDHead(BaseModule):
    """Predict the teacher's decoder features and score them with smooth L1.

    G2SD (Huang et al., CVPR 2023, arXiv 2302.14771) Sec. 3, generic
    distillation: the student's decoder output goes through a small MLP
    that predicts the teacher's (normalized) decoder hidden state, and the
    loss is the smooth-L1 distance between the two. Released code
    (pengzhiliang/G2SD): ``decoderfeature_pred = Mlp(256, 512, 512)`` (fc1,
    GELU, fc2, no dropout) in ``models_mae.py`` and
    ``F.smooth_l1_loss(pred, target, beta=2.0)`` (mean over every element)
    in ``engine_distill.py``.

    Token set (``masked_only``):

    - ``False`` (released default ``--supervise_all True``): every token,
      the class token and all N patches, (B, 1 + N, C);
    - ``True``: the masked patches only, as the released
      ``pred[:, 1:][mask.bool()]`` (no class token).

    Args:
        in_channels (int): width of the student decoder (256 for ViT-S).
        hidden_channels (int): MLP hidden width (512).
        out_channels (int): width of the teacher decoder (512 for ViT-B).
        beta (float): smooth-L1 threshold; 2.0 as released.
        masked_only (bool): score the masked patches only.
        loss_weight (float): multiplies the loss.
    """

    def __init__(self,
                 in_channels: int = 256,
                 hidden_channels: int = 512,
                 out_channels: int = 512,
                 beta: float = 2.0,
                 masked_only: bool = False,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if beta <= 0:
            raise ValueError(f'beta={beta}: smooth L1 needs beta > 0 '
                             '(G2SD uses 2.0).')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.beta = float(beta)
        self.masked_only = masked_only
        self.loss_weight = loss_weight
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_channels, out_channels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``fc2(GELU(fc1(hidden)))``: (..., in) -> (..., out)."""
        return self.fc2(self.act(self.fc1(hidden)))

    @staticmethod
    def select_masked(tokens: torch.Tensor,
                      mask: torch.Tensor) -> torch.Tensor:
        """The masked patch tokens of ``tokens`` (B, 1 + N, C), class token
        dropped: (number of masked patches in the batch, C)."""
        return tokens[:, 1:][mask.bool()]

    def loss(self, hidden: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Smooth-L1 (``beta``) between ``self(hidden)`` and ``target``.

        Args:
            hidden: student decoder hidden states (B, 1 + N, in_channels),
                class token first.
            target: teacher targets (B, 1 + N, out_channels), already
                normalized (:meth:`G2SD.teacher_targets`).
            mask: (B, N), 1 for masked patches.

        Returns:
            ``{'loss': ...}``.
        """
        pred = self(hidden)
        if pred.shape != target.shape:
            raise ValueError(
                f'the head predicts {tuple(pred.shape)} but the teacher '
                f'targets are {tuple(target.shape)}: set '
                f'head.out_channels={target.shape[-1]} (the teacher decoder '
                'width).')
        if self.masked_only:
            pred = self.select_masked(pred, mask)
            target = self.select_masked(target, mask)
        loss = F.smooth_l1_loss(pred.float(), target.float(), beta=self.beta)
        return dict(loss=self.loss_weight * loss)
