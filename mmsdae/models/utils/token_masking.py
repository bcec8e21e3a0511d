"""Progressive redundant token masking of the student's input (Hybrid
Distill, arXiv 2306.15876 Sec. 3, Table A5). The score and the schedule
are our choices, argued in ``configs/hybrid_distill/README.md``.
"""
from typing import Optional, Sequence, Tuple

import torch

__all__ = ['ProgressiveRedundantMasking', 'class_token_attention',
           'all_patches', 'SCORE_TEACHERS']

SCORE_TEACHERS = ('teacher_c', 'teacher_m')


def class_token_attention(logits: torch.Tensor) -> torch.Tensor:
    """Redundancy score of every patch: how much the class token attends to
    it, ``softmax(A[:, :, 0, :])[..., 1:]`` averaged over the heads.

    Args:
        logits: (B, H, 1 + N, 1 + N) attention logits of one block, the
            class token first.

    Returns:
        (B, N) scores; low = redundant.
    """
    if logits.dim() != 4 or logits.shape[-1] != logits.shape[-2]:
        raise ValueError('expected attention logits (B, H, T, T), got '
                         f'{tuple(logits.shape)}.')
    return logits[:, :, 0].float().softmax(dim=-1)[..., 1:].mean(dim=1)


class ProgressiveRedundantMasking:
    """Which patches the student sees: all but the ``k`` most redundant,
    with ``k`` growing in stages over training.

    Args:
        stages: ``((start, ratio), ...)``: from training progress ``start``
            (``epoch / max_epochs``) on, ``int(ratio * N)`` patches are
            masked.
        score_teacher: whose class-token attention scores redundancy,
            ``'teacher_c'`` (default) or ``'teacher_m'``.
        score_layer: the block of that teacher (default -1, the last).
    """

    #: allowed values, for the start-up config check (utils/preflight.py)
    choices = {'score_teacher': SCORE_TEACHERS}

    def __init__(self,
                 stages: Sequence[Tuple[float, float]] = ((0.0, 0.0), ),
                 score_teacher: str = 'teacher_c',
                 score_layer: int = -1) -> None:
        stages = [tuple(stage) for stage in stages]
        if not stages or any(len(stage) != 2 for stage in stages):
            raise ValueError('token_masking.stages must be a non-empty list '
                             'of (start, ratio) pairs.')
        starts = [float(s) for s, _ in stages]
        ratios = [float(r) for _, r in stages]
        if starts[0] != 0.0:
            raise ValueError(f'token_masking.stages: the first stage '
                             f'starts at {starts[0]}, not 0.')
        if any(b <= a for a, b in zip(starts, starts[1:])) \
                or starts[-1] >= 1.0:
            raise ValueError(
                f'token_masking.stages starts {starts} must increase '
                'strictly and stay below 1 (fractions of the run).')
        if any(not 0.0 <= r < 1.0 for r in ratios):
            raise ValueError(f'token_masking.stages ratios {ratios} must lie '
                             'in [0, 1).')
        if any(b < a for a, b in zip(ratios, ratios[1:])):
            raise ValueError(f'token_masking.stages ratios {ratios} must '
                             'not decrease.')
        if score_teacher not in SCORE_TEACHERS:
            raise ValueError(f'token_masking.score_teacher={score_teacher!r}:'
                             f' choose one of {SCORE_TEACHERS}.')
        self.stages = list(zip(starts, ratios))
        self.score_teacher = score_teacher
        self.score_layer = int(score_layer)

    def ratio(self, progress: float) -> float:
        """The masking ratio at training progress ``progress`` in [0, 1]."""
        current = self.stages[0][1]
        for start, ratio in self.stages:
            if progress + 1e-9 >= start:
                current = ratio
        return current

    def num_masked(self, num_patches: int, progress: float) -> int:
        """Patches masked at ``progress``: ``int(ratio * N)`` (MAE's
        rounding), at most ``N - 1``."""
        return min(int(self.ratio(progress) * num_patches), num_patches - 1)

    @staticmethod
    def split(score: torch.Tensor,
              num_masked: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(kept, masked)`` raster-sorted indices, (B, N - k) and (B, k):
        the ``num_masked`` lowest of ``score`` (B, N) are masked."""
        batch, num = score.shape
        if not 0 <= num_masked < num:
            raise ValueError(f'cannot mask {num_masked} of {num} patches.')
        order = torch.argsort(score.float(), dim=1, descending=True,
                              stable=True)
        kept = order[:, :num - num_masked].sort(dim=1).values
        masked = order[:, num - num_masked:].sort(dim=1).values
        return kept, masked

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(stages={self.stages}, score_teacher='
                f'{self.score_teacher!r}, score_layer={self.score_layer})')


def all_patches(batch: int, num_patches: int,
                device: Optional[torch.device] = None) -> torch.Tensor:
    """(B, N) raster indices of every patch: the student's input without
    masking."""
    return torch.arange(num_patches, device=device).expand(batch, -1)
