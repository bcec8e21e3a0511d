"""Per-sample random numbers: a sample's augmentation is a function of
``(seed, epoch, sample index)``, not of the process that draws it.

DataLoader workers draw augmentations from their own generators, which
MMEngine seeds once per worker from ``(seed, rank, worker id)``: which
worker prepares which sample, and what that worker drew before, decide the
crop. A run resumed in the middle of an epoch hands the samples to its
workers in another pattern, so it does not repeat the uninterrupted run.
:class:`PerSampleSeededDataset` seeds ``random``, numpy and torch's CPU
generator from ``(seed, epoch, index)`` right before each sample is
prepared, and puts back the generators' previous state after it: a sample
comes out the same whatever process prepares it and in whatever order,
and the main process's random stream (masks, drop path) does not depend on
the data loading either.

The epoch and seed live in shared memory (:class:`SharedPosition`): a
persistent worker keeps the copy of the dataset it got at its start and
never sees an attribute set later in the main process, but it reads the
shared values that the train loop writes before each epoch's first batch
is requested.
"""
import copy
import multiprocessing
import random
from typing import Union

import numpy as np
import torch
from mmpretrain.registry import DATASETS
from torch.utils.data import Dataset

_SAMPLE_STREAM = 2  # mmsdae.engine.loops uses 0 (epochs) and 1 (iterations)


class SharedPosition:
    """``(seed, epoch)`` in shared memory, read by the dataloader workers
    (forked, or spawned: the memory travels with the dataset at the
    worker's start). Copies of the dataset share it."""

    def __init__(self, seed: int = 0, epoch: int = 0) -> None:
        self._values = multiprocessing.RawArray('q', 2)
        self.set(seed, epoch)

    def set(self, seed: int, epoch: int) -> None:
        self._values[0] = int(seed) % 2**63
        self._values[1] = int(epoch)

    @property
    def seed(self) -> int:
        return self._values[0]

    @property
    def epoch(self) -> int:
        return self._values[1]

    def __deepcopy__(self, memo) -> 'SharedPosition':
        return self


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 64-bit generator seed from ``(seed, epoch, index)`` through numpy's
    ``SeedSequence`` (well separated seeds for neighbouring triples)."""
    words = np.random.SeedSequence(
        [seed % 2**64, _SAMPLE_STREAM, epoch, index]).generate_state(2)
    return int(words[0]) << 32 | int(words[1])


@DATASETS.register_module()
class PerSampleSeededDataset(Dataset):
    """``dataset`` whose sample ``i`` is prepared with ``random``, numpy and
    torch's CPU generator seeded from ``(seed, epoch, i)`` (see the module
    docstring). :class:`~mmsdae.engine.ResumableEpochBasedTrainLoop` wraps
    its training dataset in it and sets the position before every epoch.

    Other attributes (``metainfo``, ``pipeline``, ``get_data_info``...)
    are those of ``dataset``.

    Args:
        dataset (Dataset | dict): the dataset, or its config.
        seed (int): the run's seed. Defaults to 0.
    """

    def __init__(self, dataset: Union[Dataset, dict], seed: int = 0) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(copy.deepcopy(dataset))
        self.dataset = dataset
        self.position = SharedPosition(seed)

    def set_position(self, seed: int, epoch: int) -> None:
        """Seed and epoch of the samples requested from now on (call before
        the epoch's first batch is requested)."""
        self.position.set(seed, epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int):
        state = (random.getstate(), np.random.get_state(),
                 torch.get_rng_state())
        seed = sample_seed(self.position.seed, self.position.epoch, int(idx))
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.default_generator.manual_seed(seed)
        try:
            return self.dataset[idx]
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])
            torch.set_rng_state(state[2])

    def __getattr__(self, name: str):
        # only reached for names the wrapper lacks; 'dataset' itself is
        # missing while unpickling in a spawned worker
        if name == 'dataset' or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.dataset!r})'
