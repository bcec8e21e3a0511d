"""An epoch-based train loop whose resumed runs repeat the uninterrupted one.

MMEngine 0.10.7 does not make a resumed run continue the interrupted one:

* its checkpoints hold no random state: after a resume the masks, drop-path
  and augmentation draws differ from those the uninterrupted run makes;
* ``EpochBasedTrainLoop`` resumed from a checkpoint saved in the middle of
  an epoch (``CheckpointHook(by_epoch=False)``) runs that epoch again from
  its first batch while the iteration counter goes on, so the batches seen
  before the stop are trained twice and the run ends ``k`` iterations later
  in the schedule than it should (its ``IterBasedTrainLoop`` skips, by
  loading and dropping the batches);
* with ``randomness.seed=None`` the resumed run shuffles with a new seed.

:class:`ResumableEpochBasedTrainLoop` fixes all three, so a run stopped
after any iteration and resumed reproduces, on the same hardware, the loss
sequence, the teacher weights and the momentum schedule of the uninterrupted
run (``tests/test_engine/test_exact_resume.py``).

Random state. Instead of saving the generators' states, the loop reseeds
Python's ``random``, numpy's global generator and torch (CPU and every CUDA
device) before each iteration's batch is fetched, from
``(runner.seed, iteration)``, and before each epoch from
``(runner.seed, epoch)``. The state that drives an iteration (masking,
TeacherInput's folds, drop path; augmentations: see below) is then a
function of what every checkpoint already holds: the seed (``meta.seed``)
and the iteration count (``meta.iter``). This restores every rank exactly in
distributed runs without gathering states (``Runner.save_checkpoint`` runs
on rank 0 only): ``runner.seed`` is ``seed + rank`` with
``randomness.diff_rank_seed=True``, so ranks keep distinct masks.

Data order. The position in the epoch is saved in the message hub (so in
every checkpoint) under ``'exact_resume'``. On a mid-epoch resume the loop
drops the batches already trained from the sampler's indices (no image is
decoded), keeps the batch indices the hooks see (``batch_idx`` continues at
``k``) and restores the sampler's shuffle seed. Samplers behind a
non-standard batch sampler are skipped by fetching and dropping batches.

Augmentations. The loop wraps its training dataset (given as a config) in
:class:`~mmsdae.datasets.seeded.PerSampleSeededDataset`, which prepares
sample ``i`` of epoch ``e`` with generators seeded from ``(runner.seed, e, i)``
and puts the process's generators back afterwards: the augmentation no
longer depends on which DataLoader worker draws it (MMEngine seeds each
worker once, from ``(seed, rank, worker id)``), so a resumed run with any
number of workers, persistent or not, repeats the uninterrupted one, and a
run with workers draws what a run without them draws
(``per_sample_seed=False`` turns this off; a dataloader given as a built
``DataLoader`` is not wrapped).

Gradient accumulation. A checkpoint saved ``r`` micro-batches into a group
of ``optim_wrapper.accumulative_counts`` holds no gradients (MMEngine warns
that they are lost). The optimizer has not stepped since the group began,
so the loop recomputes them: it runs ``train_step`` on those ``r`` batches
again, with the same random state, without hooks. A group that began in
the previous epoch is not recomputed (a warning says so).
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
    """``EpochBasedTrainLoop`` that resumes exactly, also mid-epoch.

    Same arguments as MMEngine's ``EpochBasedTrainLoop``, and
    ``per_sample_seed`` (default True: seed each sample's augmentation from
    ``(seed, epoch, index)``); see the module docstring for what is
    reseeded and saved. Use it as
    ``train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=...)``
    (every pre-training config of this package does).
    """

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
