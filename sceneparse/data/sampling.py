"""The order of the training samples and the randomness of their augmentations, the same for any
number of processes and loader workers.

Each epoch :class:`GlobalBatchSampler` draws one permutation of the training set and one
augmentation seed per position from the loader's generator, cuts the permutation into global
batches and gives each process (rank) its slice of each. :class:`SeededSamples` loads a sample
with its seed in force. So ``torchrun --nproc_per_node N`` trains on exactly the global batches
of one process, augmented alike, and which loader worker loads a sample does not matter; what
still differs is the float rounding of the sums and each process's dropout masks.
"""

from __future__ import annotations

import random

import numpy as np
import torch.utils.data

__all__ = ["GlobalBatchSampler", "SeededSamples"]


class GlobalBatchSampler(torch.utils.data.Sampler):
    """``(index, seed)`` pairs: this rank's part of each global batch of one epoch's order.

    Args:
        length: the number of training samples.
        global_batch: the batch of one optimiser step over all ranks; the last, incomplete one is
            dropped (as ``drop_last``), so every rank takes as many steps.
        rank, world_size: this process and the number of processes; each takes
            ``global_batch // world_size`` consecutive samples of each global batch.
        generator: draws the order and the seeds; the same state on every rank (seeded alike)
            gives every rank the same epoch, and a resumed run restores it to go on where it was.
    """

    def __init__(self, length: int, global_batch: int, rank: int = 0, world_size: int = 1,
                 generator: torch.Generator | None = None) -> None:  # fmt: skip
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} does not divide among {world_size} processes")
        self.length, self.global_batch, self.rank, self.world_size = length, global_batch, rank, world_size
        self.generator = generator

    def __len__(self) -> int:
        return self.length // self.global_batch * (self.global_batch // self.world_size)

    def __iter__(self):
        order = torch.randperm(self.length, generator=self.generator).tolist()
        seeds = torch.randint(0, 2**62, (self.length,), generator=self.generator).tolist()
        per = self.global_batch // self.world_size
        for start in range(0, self.length - self.length % self.global_batch, self.global_batch):
            first = start + self.rank * per
            yield from zip(order[first : first + per], seeds[first : first + per], strict=True)


class SeededSamples(torch.utils.data.Dataset):
    """``dataset`` indexed by the ``(index, seed)`` pairs of :class:`GlobalBatchSampler`: the
    sample's transform draws from Python's and numpy's generators seeded with ``seed``; their
    states are restored afterwards."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        states = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            return self.dataset[index]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
