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

    G2SD (arXiv 2302.14771) Sec. 3; released ``Mlp(256, 512, 512)`` (fc1,
    GELU, fc2) and ``F.smooth_l1_loss(pred, target, beta=2.0)``, over every
    token (released ``--supervise_all True``) or, with ``masked_only``, the
    masked patches (``pred[:, 1:][mask.bool()]``).

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
        """``{'loss': smooth L1}`` between ``self(hidden)`` and ``target``
        (both (B, 1 + N, C)); ``mask`` (B, N) is 1 for masked patches."""
        pred = self(hidden)
        if pred.shape != target.shape:
            raise ValueError(
                f'the head predicts {tuple(pred.shape)}, the targets are '
                f'{tuple(target.shape)}: set head.out_channels='
                f'{target.shape[-1]}.')
        if self.masked_only:
            pred = self.select_masked(pred, mask)
            target = self.select_masked(target, mask)
        loss = F.smooth_l1_loss(pred.float(), target.float(), beta=self.beta)
        return dict(loss=self.loss_weight * loss)
