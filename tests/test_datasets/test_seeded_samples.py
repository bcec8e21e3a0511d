"""PerSampleSeededDataset: a sample's random draws are a function of
(seed, epoch, index), whatever process prepares it, in whatever order."""
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmsdae.datasets.seeded import PerSampleSeededDataset, sample_seed


class Draws(Dataset):
    """Sample i: one draw from each generator an augmentation may use."""

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return torch.tensor([random.random(), np.random.rand(),
                             torch.rand(()).item()], dtype=torch.float64)


def expected(seed, epoch, idx):
    """The draws by hand: each generator seeded from sample_seed."""
    s = sample_seed(seed, epoch, idx)
    random.seed(s)
    np.random.seed(s % 2**32)
    gen = torch.Generator().manual_seed(s)
    return torch.tensor([random.random(), np.random.rand(),
                         torch.rand((), generator=gen).item()],
                        dtype=torch.float64)


def test_sample_depends_on_seed_epoch_index_only():
    data = PerSampleSeededDataset(Draws(), seed=3)
    forward = [data[i] for i in range(8)]
    backward = [data[i] for i in reversed(range(8))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward))
    assert all(torch.equal(forward[i], expected(3, 0, i)) for i in range(8))
    assert len({tuple(x.tolist()) for x in forward}) == 8
    data.set_position(3, 1)  # another epoch, other draws
    assert not torch.equal(data[0], forward[0])
    data.set_position(4, 0)  # another seed, other draws
    assert not torch.equal(data[0], forward[0])


def test_the_process_generators_are_put_back():
    data = PerSampleSeededDataset(Draws(), seed=0)
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    data[5]
    after = (random.random(), np.random.rand(), torch.rand(()).item())
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    assert after == (random.random(), np.random.rand(), torch.rand(()).item())


def test_persistent_workers_see_the_epoch_set_after_they_started():
    data = PerSampleSeededDataset(Draws(), seed=7)
    loader = DataLoader(data, batch_size=3, num_workers=2,
                        persistent_workers=True)
    try:
        for epoch in range(2):
            data.set_position(7, epoch)
            batches = torch.cat(list(loader))
            # the same as the main process draws, sample by sample
            assert torch.equal(
                batches, torch.stack([expected(7, epoch, i)
                                      for i in range(8)]))
    finally:
        loader._iterator._shutdown_workers()


def test_without_the_wrapper_workers_draw_other_numbers():
    """Why it exists: MMEngine-style per-worker seeds make sample i depend on
    the worker that prepares it (so on batch size and worker count)."""
    def load(workers):
        torch.manual_seed(0)
        return torch.cat(list(DataLoader(Draws(), batch_size=2,
                                         num_workers=workers)))

    assert not torch.equal(load(1), load(2))
    data = PerSampleSeededDataset(Draws())
    one, two = (torch.cat(list(DataLoader(data, batch_size=b, num_workers=w)))
                for b, w in ((2, 1), (3, 2)))
    assert torch.equal(one, two)
