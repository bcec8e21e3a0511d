"""An epoch-based train loop whose resumed runs repeat the uninterrupted one
(README, "Exact continuation"; ``tests/test_engine/test_exact_resume.py``).

MMEngine 0.10.7 saves no random state, reruns a half-done epoch from its
first batch after a mid-epoch checkpoint, and reshuffles with a new seed
when ``randomness.seed=None``. :class:`ResumableEpochBasedTrainLoop`:

* reseeds ``random``, numpy and torch from ``(runner.seed, iteration)``
  before each batch and ``(runner.seed, epoch)`` before each epoch, so the
  random state is a function of what every checkpoint holds (``meta.seed``,
  ``meta.iter``) on every rank (``diff_rank_seed`` keeps ranks distinct);
* saves the position in the epoch under ``'exact_resume'`` in the message
  hub and, on a mid-epoch resume, drops the trained indices from the
  sampler (no image decoded; ``batch_idx`` continues) with the same shuffle
  seed;
* wraps a dataset config in :class:`~mmsdae.datasets.seeded.
  PerSampleSeededDataset` (augmentation seeded per ``(seed, epoch, index)``,
  whatever the DataLoader worker; ``per_sample_seed=False`` turns it off);
* recomputes the gradients of the ``r`` micro-batches of an unfinished
  accumulation group (same random state, no hooks), which MMEngine's
  checkpoints lose; a group begun in the previous epoch is not (a warning
  says so).
"""
import copy
import itertools
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import LOOPS
from torch.utils.data import BatchSampler

from ..datasets.seeded import PerSampleSeededDataset
from .hooks.teacher_ema_hook import accumulation

INFO_KEY = 'exact_resume'  # message hub runtime info, saved in checkpoints
_EPOCH_STREAM, _ITER_STREAM = 0, 1


def reseed(seed: int, stream: int, step: int) -> None:
    """Seed ``random``, numpy and torch (all devices) from
    ``(seed, stream, step)`` through numpy's ``SeedSequence``, which mixes
    the three into well separated generator seeds."""
    words = np.random.SeedSequence(
        [seed % 2**64, stream, step]).generate_state(2)
    random.seed(int(words[0]))
    np.random.seed(int(words[0]))
    torch.manual_seed(int(words[0]) << 32 | int(words[1]))


class _SkipFirst(torch.utils.data.Sampler):
    """``sampler`` without its first ``n`` indices; its length stays that of
    ``sampler``, so ``len(dataloader)`` (which hooks use to find the end of
    an epoch) does not change."""

    def __init__(self, sampler, n: int) -> None:
        self.sampler = sampler
        self.n = n

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.n, None)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes exactly, also mid-epoch (see the
    module docstring), with ``per_sample_seed`` (default True)."""

    def __init__(self, runner, dataloader, *args,
                 per_sample_seed: bool = True, **kwargs) -> None:
        dataset = dataloader.get('dataset') if isinstance(
            dataloader, dict) else None
        if per_sample_seed and dataset is not None and not (
                isinstance(dataset, PerSampleSeededDataset)
                or isinstance(dataset, dict) and dataset.get('type') in (
                    'PerSampleSeededDataset', PerSampleSeededDataset)):
            dataloader = copy.copy(dataloader)
            dataloader['dataset'] = dict(
                type=PerSampleSeededDataset, dataset=dataloader['dataset'],
                seed=runner.seed)
        super().__init__(runner, dataloader, *args, **kwargs)
        self._skip = 0  # batches of the current epoch trained before a stop

    # ------------------------------------------------------------ helpers
    def _index_sampler(self):
        """The sampler that orders the dataset (DefaultSampler)."""
        sampler = getattr(getattr(self.dataloader, 'batch_sampler', None),
                          'sampler', None)
        if sampler is None:
            sampler = getattr(self.dataloader, 'sampler', None)
        return sampler

    def _save_position(self, epoch: int, epoch_start_iter: int) -> None:
        """Record where ``epoch`` starts; checkpoints carry it."""
        self.runner.message_hub.update_info(
            INFO_KEY,
            dict(
                epoch=epoch,
                epoch_start_iter=epoch_start_iter,
                iters_per_epoch=len(self.dataloader),
                sampler_seed=self._sampler_seed()))

    def _sampler_seed(self) -> Optional[int]:
        seed = getattr(self._index_sampler(), 'seed', None)
        return None if seed is None else int(seed)  # no numpy ints

    def _reseed(self, stream: int, step: int) -> None:
        reseed(self.runner.seed, stream, step)

    def _batches_done(self, saved: Optional[dict]) -> int:
        """Batches of the current epoch trained before the checkpoint."""
        if self._iter == 0:
            return 0
        num = len(self.dataloader)
        if saved and saved.get('epoch') == self._epoch:
            done, saved_num = (self._iter - saved['epoch_start_iter'],
                               saved['iters_per_epoch'])
        else:  # a checkpoint without the position: assume a fixed length
            done, saved_num = self._iter - self._epoch * num, num
        if not 0 <= done <= saved_num:
            print_log(
                f'cannot place iteration {self._iter} in epoch '
                f'{self._epoch} ({saved_num} iterations per epoch): the '
                'epoch starts from its first batch.',
                logger='current', level=logging.WARNING)
            return 0
        if saved_num != num:
            scaled = min(num, round(done * num / saved_num))
            print_log(
                f'the checkpoint was saved with {saved_num} iterations per '
                f'epoch, this run has {num} (another batch size, dataset or '
                f'number of GPUs): skipping {scaled} of the interrupted '
                "epoch's batches, the same fraction; the resumed run does "
                'not repeat the uninterrupted one.',
                logger='current', level=logging.WARNING)
            return scaled
        return done

    def _restore_sampler_seed(self, saved: Optional[dict]) -> None:
        sampler = self._index_sampler()
        seed = (saved or {}).get('sampler_seed')
        if seed is not None and getattr(sampler, 'seed', seed) != seed:
            print_log(
                f'restoring the shuffle seed of the checkpoint ({seed}, '
                f'this run drew {sampler.seed}).', logger='current')
            sampler.seed = seed

    def _partial_group(self, skip: int) -> int:
        """Micro-batches of an unfinished gradient-accumulation group that a
        resumed run must recompute (their gradients are not in the
        checkpoint), after setting the optimizer wrapper's count to the
        group's start; 0 when the stop fell between optimizer steps."""
        k = accumulation(self.runner)[0]
        done = self._iter % k
        if skip == 0 or done == 0:
            return 0
        if done > skip:
            print_log(
                f'resuming at iteration {self._iter}, {done} micro-batches '
                f'into a group of {k} accumulated ones that began in the '
                'previous epoch: their gradients are lost, so the run does '
                'not repeat the uninterrupted one. Save checkpoints at '
                'multiples of optim_wrapper.accumulative_counts.',
                logger='current', level=logging.WARNING)
            return 0
        print_log(
            f'resuming {done} micro-batches into a group of {k} accumulated '
            'ones: recomputing their gradients (the weights have not changed '
            'since the group began).', logger='current')
        self.runner.optim_wrapper.initialize_count_status(
            self.runner.model, self._iter - done, self._max_iters)
        return done

    # --------------------------------------------------------------- loop
    def run(self) -> torch.nn.Module:
        """Find where a resumed run stopped, then train as usual."""
        saved = self.runner.message_hub.get_info(INFO_KEY)
        self._restore_sampler_seed(saved)
        self._skip = self._batches_done(saved)
        if self._skip:
            print_log(
                f'resuming in the middle of epoch {self._epoch + 1}: '
                f'skipping its first {self._skip} batches (already trained).',
                logger='current')
        return super().run()

    def run_epoch(self) -> None:
        """One epoch (its rest after a mid-epoch resume), each batch fetched
        after reseeding from the iteration number."""
        skip, self._skip = self._skip, 0
        dataset = self.dataloader.dataset
        if isinstance(dataset, PerSampleSeededDataset):
            # before the workers are asked for the epoch's first batch
            dataset.set_position(self.runner.seed, self._epoch)
        self._reseed(_EPOCH_STREAM, self._epoch)
        self._save_position(self._epoch, self._iter - skip)
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()

        replay = self._partial_group(skip)
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        by_index = skip > 0 and type(batch_sampler) is BatchSampler
        if by_index:  # drop the indices, so nothing is loaded
            original = batch_sampler.sampler
            batch_sampler.sampler = _SkipFirst(
                original, (skip - replay) * batch_sampler.batch_size)
        try:
            batches = iter(self.dataloader)
            for i in range(skip - replay if by_index else 0, skip):
                self._reseed(_ITER_STREAM, self._iter - skip + i)
                data_batch = next(batches)  # load and drop, or replay
                if i >= skip - replay:
                    self.runner.model.train_step(
                        data_batch, optim_wrapper=self.runner.optim_wrapper)
            for idx in itertools.count(skip):
                self._reseed(_ITER_STREAM, self._iter)
                try:
                    data_batch = next(batches)
                except StopIteration:
                    break
                self.run_iter(idx, data_batch)
        finally:
            if by_index:
                batch_sampler.sampler = original

        # a checkpoint saved by an after_train_epoch hook resumes at the
        # first batch of the next epoch
        self._save_position(self._epoch + 1, self._iter)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
