"""The training order and augmentations, alike for any number of processes (sceneparse/data/sampling.py)."""

import random

import numpy as np
import pytest
import torch

from sceneparse.data.presets import train_preset
from sceneparse.data.sampling import GlobalBatchSampler, SeededSamples


def _epochs(world_size: int, rank: int, epochs: int = 2, length: int = 30, batch: int = 8) -> list[list[tuple]]:
    sampler = GlobalBatchSampler(length, batch, rank, world_size, torch.Generator().manual_seed(5))
    return [list(sampler) for _ in range(epochs)]


@pytest.mark.parametrize("world_size", [2, 4])
def test_cardinality_ranks_share_out_the_global_batches_of_one_process(world_size):
    one = _epochs(1, 0)
    ranks = [_epochs(world_size, r) for r in range(world_size)]
    per = 8 // world_size
    for epoch in range(2):
        assert len(one[epoch]) == 24  # 3 whole global batches of 8 out of 30: the rest dropped
        assert all(len(r[epoch]) == 3 * per for r in ranks)
        for step in range(3):  # each global batch: the ranks' slices, in rank order
            joined = [pair for r in ranks for pair in r[epoch][step * per : (step + 1) * per]]
            assert joined == one[epoch][step * 8 : (step + 1) * 8]
        indices = [i for i, _ in one[epoch]]
        assert len(set(indices)) == 24 and set(indices) <= set(range(30))
    assert one[0] != one[1]  # another order and other seeds each epoch
    assert len(GlobalBatchSampler(30, 8, 1, world_size)) == 3 * per


def test_feature_the_generator_state_resumes_the_next_epoch():
    g = torch.Generator().manual_seed(5)
    sampler = GlobalBatchSampler(30, 8, 0, 2, g)
    list(sampler)
    state = g.get_state()
    second = list(sampler)
    resumed = GlobalBatchSampler(30, 8, 1, 2, torch.Generator().set_state(state))
    assert list(resumed) == _epochs(2, 1)[1] and second == _epochs(2, 0)[1]


def test_exception_global_batch_must_divide_among_processes():
    with pytest.raises(ValueError, match="global batch 9 does not divide among 2 processes"):
        GlobalBatchSampler(30, 9, 0, 2)


class _Images(torch.utils.data.Dataset):
    def __init__(self, transform):
        rng = np.random.default_rng(0)
        self.samples = [{"image": rng.integers(0, 255, (60, 80, 3), np.uint8),
                         "label": rng.integers(0, 5, (60, 80), np.uint8)} for _ in range(3)]  # fmt: skip
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.transform({k: v.copy() for k, v in self.samples[i].items()})


def test_feature_a_sample_is_augmented_by_its_seed_alone_and_the_global_generators_are_kept():
    data = SeededSamples(_Images(train_preset((32, 48), (0.5, 1.5), color_jitter=0.3)))
    assert len(data) == 3
    random.seed(1)
    np.random.seed(1)
    first = data[(2, 123)]
    after = random.random(), np.random.rand()
    random.seed(1)
    np.random.seed(1)
    assert (random.random(), np.random.rand()) == after  # the global streams untouched
    random.seed(99)  # another global state, another order of loading: the same sample
    data[(0, 7)]
    again = data[(2, 123)]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["label"], again["label"])
    other = data[(2, 124)]
    assert not torch.equal(first["image"], other["image"])
