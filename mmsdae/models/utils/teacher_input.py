"""What the SdAE teacher sees: the teacher-input options of Sec. 2.2."""
from typing import Optional, Tuple

import torch

TEACHER_INPUT_MODES = ('multi_fold', 'masked', 'crop', 'full')
DEFAULT_NUM_FOLDS = 3  # supplementary Sec. 1: 3 folds of 49 for ViT-B/16


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and value >= 1


class TeacherInput:
    """Choose the patches the teacher encodes and where the loss applies.

    The options are the rows of SdAE Table 5 and the curves of Fig. 4(b):

    - ``'multi_fold'`` (default, Sec. 2.2 "Multi-fold Masking Strategy"):
      the masked patches, in the mask's random order, are cut into
      ``num_folds`` disjoint folds of equal size; each fold is one teacher
      sequence. ViT-B/16 at 224 px with mask ratio 0.75: 3 folds of 49.
    - ``'masked'`` (Table 5 row 3, "Only masked"): all masked patches as one
      sequence (``multi_fold`` with one fold).
    - ``'crop'`` (Sec. 2.2 "teacher crop", Fig. 3(c)): a random subset of
      ``crop_tokens`` masked patches as one sequence; the loss covers only
      those positions.
    - ``'full'`` (Table 5 rows 1-2, Fig. 3(b)): the whole image as one
      sequence; the loss still covers only the masked positions.

    ``drop_remainder=True`` (the released ``shrink_num``; Fig. 4(b)'s 4 x
    36 of 147) leaves the ``N_masked mod t`` left-over patches without a
    target; by default a fold count that does not divide is refused.

    Args:
        mode (str): one of ``TEACHER_INPUT_MODES``.
        num_folds (int, optional): folds t of ``'multi_fold'`` (default 3).
        crop_tokens (int, optional): k of ``'crop'`` (required there).
        drop_remainder (bool): ``'multi_fold'`` only, see above.
    """

    #: allowed values, for the start-up config check (utils/preflight.py)
    choices = {'mode': TEACHER_INPUT_MODES}

    def __init__(self,
                 mode: str = 'multi_fold',
                 num_folds: Optional[int] = None,
                 crop_tokens: Optional[int] = None,
                 drop_remainder: bool = False) -> None:
        if mode not in TEACHER_INPUT_MODES:
            raise ValueError(f'teacher_input mode {mode!r} is unknown: choose '
                             f'one of {TEACHER_INPUT_MODES}.')
        unused = [name for name, value, used_by in (
            ('num_folds', num_folds, 'multi_fold'),
            ('crop_tokens', crop_tokens, 'crop'),
            ('drop_remainder', drop_remainder or None, 'multi_fold'),
        ) if value is not None and mode != used_by]
        if unused:
            raise ValueError(
                f'teacher_input mode {mode!r} does not use {unused}: remove '
                'them (or override with _delete_=True).')
        if mode == 'multi_fold':
            num_folds = DEFAULT_NUM_FOLDS if num_folds is None else num_folds
            if not _is_positive_int(num_folds):
                raise ValueError(f'num_folds={num_folds!r} must be a positive '
                                 'integer (the paper uses 3).')
        if mode == 'crop' and not _is_positive_int(crop_tokens):
            raise ValueError(f'crop_tokens={crop_tokens!r} must be a '
                             "positive integer for mode='crop', e.g. 49.")
        self.mode = mode
        self.num_folds = num_folds if mode == 'multi_fold' else 1
        self.crop_tokens = crop_tokens
        self.drop_remainder = drop_remainder

    def check(self, num_patches: int, num_masked: int) -> None:
        """Refuse settings that do not fit ``num_masked`` masked patches."""
        if self.mode == 'multi_fold':
            if self.num_folds > num_masked:
                raise ValueError(
                    f'num_folds={self.num_folds} is more than the '
                    f'{num_masked} masked patches (of {num_patches}).')
            if num_masked % self.num_folds and not self.drop_remainder:
                divisors = [d for d in range(1, num_masked + 1)
                            if num_masked % d == 0]
                raise ValueError(
                    f'{num_masked} masked patches cannot be split into '
                    f'{self.num_folds} equal folds: set num_folds to one of '
                    f'{divisors}, or drop_remainder=True.')
        if self.mode == 'crop' and self.crop_tokens > num_masked:
            raise ValueError(
                f'crop_tokens={self.crop_tokens} is larger than the '
                f'{num_masked} masked patches it is drawn from.')

    def sample(self, masked_ids: torch.Tensor,
               num_patches: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher sequences and loss positions for one batch.

        Args:
            masked_ids: (B, N_masked) raster indices of the masked patches in
                the mask's random order (``ids_shuffle[:, num_visible:]``).
            num_patches: N, the patches per image.

        Returns:
            ``teacher_ids`` (B, G, n): the patches of the G teacher sequences
            of every image; ``target_mask`` (B, N) bool: the positions whose
            teacher feature is a target (the :math:`m^i` of Eq. 4).
        """
        batch, num_masked = masked_ids.shape
        self.check(num_patches, num_masked)
        if self.mode == 'full':
            teacher_ids = torch.arange(
                num_patches, device=masked_ids.device).expand(batch, 1, -1)
            target_ids = masked_ids
        elif self.mode == 'crop':
            # the masked order is already uniformly random: its first k
            # entries are a uniformly random k-subset
            target_ids = masked_ids[:, :self.crop_tokens]
            teacher_ids = target_ids[:, None]
        else:
            fold_size = num_masked // self.num_folds
            target_ids = masked_ids[:, :fold_size * self.num_folds]
            teacher_ids = target_ids.reshape(batch, self.num_folds, fold_size)
        target_mask = torch.zeros(
            batch, num_patches, dtype=torch.bool, device=masked_ids.device)
        target_mask.scatter_(1, target_ids, True)
        return teacher_ids, target_mask

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mode={self.mode!r}, '
                f'num_folds={self.num_folds}, crop_tokens={self.crop_tokens}, '
                f'drop_remainder={self.drop_remainder})')
