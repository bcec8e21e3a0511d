"""The two loss terms of Hybrid Distill (arXiv 2306.15876), combined by
:class:`mmsdae.models.HybridDistill`; the defaults where the sources are
silent are argued in ``configs/hybrid_distill/README.md``.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn

FEATURE_DISTANCES = ('smooth_l1', 'mse', 'cosine')
RELATION_DISTANCES = ('kl', 'mse')
HEAD_REDUCTIONS = ('none', 'mean')


@MODELS.register_module()
class FeatureDistillHead(BaseModule):
    """Project the student's tokens and regress T_c's final features.

    ``pred = W x + b`` (``proj``, a linear layer, student width -> teacher
    width), ``target = LN(t)`` (per token, no affine, when
    ``target_norm``), and

    - ``'smooth_l1'`` (default): ``mean(l_beta(pred - target))`` over every
      element, ``l_beta(d) = 0.5 d^2 / beta`` if ``|d| < beta`` else
      ``|d| - beta / 2``;
    - ``'mse'``: ``mean((pred - target)^2)``;
    - ``'cosine'``: ``mean_tokens(1 - cos(pred, target))``.

    Args:
        in_channels (int): student width (768 for ViT-B).
        out_channels (int): T_c width (768 for DeiT-B and CLIP ViT-B/16).
        distance (str): one of ``FEATURE_DISTANCES``.
        beta (float): smooth-L1 threshold (2.0, FD / dBOT).
        target_norm (bool): LayerNorm the targets without affine (FD's
            "whitening"); default True.
        eps (float): its epsilon (1e-6).
    """

    def __init__(self,
                 in_channels: int = 768,
                 out_channels: int = 768,
                 distance: str = 'smooth_l1',
                 beta: float = 2.0,
                 target_norm: bool = True,
                 eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if distance not in FEATURE_DISTANCES:
            raise ValueError(f'distance={distance!r}: choose one of '
                             f'{FEATURE_DISTANCES}.')
        if distance == 'smooth_l1' and beta <= 0:
            raise ValueError(f'beta={beta}: smooth L1 needs beta > 0.')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.distance = distance
        self.beta = float(beta)
        self.target_norm = target_norm
        self.eps = eps
        self.proj = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The projected student tokens (..., out_channels)."""
        return self.proj(x)

    def target(self, teacher_tokens: torch.Tensor) -> torch.Tensor:
        """The regression target from T_c's tokens (float32)."""
        target = teacher_tokens.float()
        if self.target_norm:
            target = F.layer_norm(target, target.shape[-1:], eps=self.eps)
        return target

    def loss(self, student_tokens: torch.Tensor,
             teacher_tokens: torch.Tensor) -> torch.Tensor:
        """The feature term of the student's (B, T, C_s) and T_c's
        (B, T, C_t) final tokens at the same positions."""
        if student_tokens.shape[:-1] != teacher_tokens.shape[:-1]:
            raise ValueError(
                f'student tokens {tuple(student_tokens.shape)} and teacher '
                f'tokens {tuple(teacher_tokens.shape)} do not pair up.')
        pred = self(student_tokens).float()
        target = self.target(teacher_tokens)
        if self.distance == 'smooth_l1':
            return F.smooth_l1_loss(pred, target, beta=self.beta)
        if self.distance == 'mse':
            return F.mse_loss(pred, target)
        return (1 - F.cosine_similarity(pred, target, dim=-1)).mean()


@MODELS.register_module()
class TokenRelationHead(BaseModule):
    """Compare the student's attention maps with T_m's, block by block.

    For each block pair, logits ``A_s`` (student) and ``A_t`` (teacher), both
    (B, H, T, T) over the same T tokens, the rows ``P = softmax(A)`` are
    attention distributions and

    - ``'kl'`` (default): ``KL(P_t || P_s) = sum_j P_t (log P_t - log P_s)``
      per query row, averaged over batch, heads and query tokens;
    - ``'mse'``: ``mean((P_s - P_t)^2)`` over every entry;

    then averaged over the block pairs. ``head_reduce='mean'`` averages the
    probabilities over the heads first (student and teacher may then have
    different head counts); ``'none'`` (default) compares head by head.
    No parameters: the student's own attention is what imitates T_m.

    Args:
        distance (str): one of ``RELATION_DISTANCES``.
        head_reduce (str): one of ``HEAD_REDUCTIONS``.
    """

    def __init__(self,
                 distance: str = 'kl',
                 head_reduce: str = 'none',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if distance not in RELATION_DISTANCES:
            raise ValueError(f'distance={distance!r}: choose one of '
                             f'{RELATION_DISTANCES}.')
        if head_reduce not in HEAD_REDUCTIONS:
            raise ValueError(f'head_reduce={head_reduce!r}: choose one of '
                             f'{HEAD_REDUCTIONS}.')
        self.distance = distance
        self.head_reduce = head_reduce

    def _log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.head_reduce == 'mean':
            probs = logits.softmax(dim=-1).mean(dim=1, keepdim=True)
            return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
        return logits.log_softmax(dim=-1)

    def pair_loss(self, student: torch.Tensor,
                  teacher: torch.Tensor) -> torch.Tensor:
        """The relation distance of one block pair."""
        if student.dim() != 4 or teacher.dim() != 4 \
                or student.shape[0] != teacher.shape[0] \
                or student.shape[-2:] != teacher.shape[-2:]:
            raise ValueError(
                f'student attention {tuple(student.shape)} and teacher '
                f'attention {tuple(teacher.shape)} must be (B, H, T, T) over '
                'the same tokens.')
        if self.head_reduce == 'none' and student.shape[1] != teacher.shape[1]:
            raise ValueError(
                f'the student has {student.shape[1]} heads, T_m '
                f'{teacher.shape[1]}: compare head-averaged maps with '
                "relation_head.head_reduce='mean'.")
        log_s = self._log_probs(student)
        log_t = self._log_probs(teacher)
        if self.distance == 'kl':
            kl = F.kl_div(log_s, log_t, reduction='none', log_target=True)
            return kl.sum(dim=-1).mean()
        return F.mse_loss(log_s.exp(), log_t.exp())

    def loss(self, student: Sequence[torch.Tensor],
             teacher: Sequence[torch.Tensor]) -> torch.Tensor:
        """The relation term: :meth:`pair_loss` averaged over the blocks."""
        if len(student) != len(teacher) or not len(student):
            raise ValueError(
                f'{len(student)} student and {len(teacher)} teacher attention '
                'maps: pass one of each per distilled block.')
        losses = [self.pair_loss(s, t) for s, t in zip(student, teacher)]
        return torch.stack(losses).mean()
