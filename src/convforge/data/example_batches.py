"""Batches of examples fetched by index: the shuffling, sharding and batching of any dataset that can return the
tensors of a list of examples (in-memory feature arrays, per-video feature files, ...).

Training batches are shuffled with ``seed`` and the epoch; with ``world_size`` > 1 each rank takes every
``world_size``-th example of that order. The engine reads ``set_epoch``, ``len`` and ``num_examples``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch

from convforge.errors import InvalidValueError

Fetch = Callable[[list[int]], tuple[Any, ...]]


class ExampleBatches:
    """Batches of ``fetch(indices)`` over ``count`` examples."""

    def __init__(self, count: int, fetch: Fetch, batch_size: int, train: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, passes: int = 1) -> None:  # fmt: skip
        if batch_size < 1:
            raise InvalidValueError(f"batch size must be a positive integer, got {batch_size}")
        self.count, self.fetch, self.batch_size, self.train = count, fetch, batch_size, train
        self.passes = passes if train else 1  # training epochs of several shuffled passes, for small samples
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.channels_last = False  # the engine sets it; feature sequences have no image layout

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffle of ``epoch`` (0-based)."""
        self.epoch = epoch

    def _passes(self) -> list[list[int]]:
        """This rank's examples, pass by pass (each pass a fresh shuffle when training, cut to the same length on
        every rank)."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        passes = []
        for _ in range(self.passes):
            order = torch.randperm(self.count, generator=generator).tolist() if self.train else list(range(self.count))
            if self.world_size > 1:
                per_rank = self.count // self.world_size if self.train else math.ceil(self.count / self.world_size)
                order = order[self.rank :: self.world_size][:per_rank]
            passes.append(order)
        return passes

    @property
    def num_examples(self) -> int:
        """Examples this rank sees per epoch."""
        return sum(len(order) for order in self._passes())

    def __len__(self) -> int:
        return sum(math.ceil(len(order) / self.batch_size) for order in self._passes())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for order in self._passes():  # a batch never spans two passes
            for start in range(0, len(order), self.batch_size):
                yield self.fetch(order[start : start + self.batch_size])
