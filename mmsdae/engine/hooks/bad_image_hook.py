"""Count the images that ``SafeLoadImageFromFile`` skipped, per epoch."""
import logging
from typing import List, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from mmsdae.datasets.transforms import BadImageError, SafeLoadImageFromFile


def find_safe_loaders(dataset) -> List[SafeLoadImageFromFile]:
    """The :class:`SafeLoadImageFromFile` steps of a dataset's pipeline,
    looking through dataset wrappers (``dataset`` / ``datasets``) and
    nested ``transforms`` lists."""
    found, stack = [], [dataset]
    while stack:
        node = stack.pop()
        if isinstance(node, SafeLoadImageFromFile):
            found.append(node)
            continue
        for attr in ('dataset', 'datasets', 'pipeline', 'transforms'):
            child = getattr(node, attr, None)
            if isinstance(child, (list, tuple)):
                stack.extend(child)
            elif child is not None and not isinstance(child, (str, dict)):
                stack.append(child)
    return found


@HOOKS.register_module()
class BadImageHook(Hook):
    """Report the unreadable images skipped in each epoch, and stop a run
    whose data is broken rather than sparsely corrupt.

    The skip count lives in :class:`SafeLoadImageFromFile`, shared with its
    dataloader workers; each skipped file is logged with its path when it
    is skipped. At the end of every epoch with skips this hook logs the
    epoch's count and the running total (summed over all processes). The
    count is of skip events: a bad file is counted each time it is drawn
    (once per epoch, plus when MMEngine's random replacement for another
    bad file hits it).

    Args:
        max_skip_ratio (float, optional): Stop with :class:`BadImageError`
            once one process has skipped more than this fraction of the
            images it loads per epoch (its sampler's length) within one
            epoch's worth of iterations. None disables the limit.
            Defaults to 0.01.
    """

    priority = 'LOW'

    def __init__(self, max_skip_ratio: Optional[float] = 0.01) -> None:
        if max_skip_ratio is not None and not 0 <= max_skip_ratio <= 1:
            raise ValueError(f'max_skip_ratio={max_skip_ratio!r} must be in '
                             '[0, 1] or None.')
        self.max_skip_ratio = max_skip_ratio
        self.loaders: List[SafeLoadImageFromFile] = []
        self.epoch_start = 0
        self.total = 0  # over all processes, at the last epoch end

    def local_count(self) -> int:
        """Images skipped so far by this process and its workers."""
        return sum(loader.skipped.value for loader in self.loaders)

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        self.loaders = find_safe_loaders(loader.dataset)
        sampler = getattr(loader, 'sampler', None)
        try:
            self.per_epoch = len(sampler)
        except TypeError:
            self.per_epoch = len(loader.dataset)
        self.iters_per_epoch = max(len(loader), 1)
        self.epoch_start = self.window_start = self.local_count()
        self.window_iters = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        """Check the limit over windows of one epoch's iterations (which
        also works for iteration-based loops)."""
        if not self.loaders or self.max_skip_ratio is None:
            return
        count = self.local_count()
        skipped = count - self.window_start
        if skipped > self.max_skip_ratio * self.per_epoch:
            raise BadImageError(
                f'{skipped} unreadable images skipped by iteration '
                f'{runner.iter + 1} within one epoch\'s worth of iterations, '
                f'more than max_skip_ratio={self.max_skip_ratio} of the '
                f'{self.per_epoch} images this process loads per epoch: the '
                'data is broken (see the warnings above for the files). Fix '
                'or remove the files, or raise BadImageHook(max_skip_ratio='
                '...) (config key default_hooks.bad_images).')
        self.window_iters += 1
        if self.window_iters >= self.iters_per_epoch:
            self.window_start, self.window_iters = count, 0

    def after_train_epoch(self, runner) -> None:
        if not self.loaders:
            return
        local = self.local_count()
        in_epoch, self.total = self._sum_over_ranks(local - self.epoch_start,
                                                    local)
        self.epoch_start = local
        if in_epoch:
            print_log(
                f'Epoch {runner.epoch + 1}: skipped {in_epoch} unreadable '
                f'images ({self.total} since the start); each is named in a '
                'warning above.',
                logger='current',
                level=logging.WARNING)

    def after_train(self, runner) -> None:
        if self.loaders:
            _, self.total = self._sum_over_ranks(0, self.local_count())
            print_log(
                f'Unreadable images skipped in this run: {self.total}.',
                logger='current')

    @staticmethod
    def _sum_over_ranks(*counts: int) -> List[int]:
        """Sum over all processes (every rank calls this at the same
        point, so the collective cannot hang)."""
        counts = torch.tensor(counts, dtype=torch.int64)
        all_reduce(counts)
        return [int(c) for c in counts]
