"""Seeded subsets of a dataset: ``--train-subset`` and ``--val-subset`` for every task."""

from __future__ import annotations

import torch


def seeded_indices(total: int, count: int, seed: int = 0) -> list[int]:
    """``count`` distinct indices below ``total`` drawn with ``seed`` (all of them, in order, when ``count`` is 0
    or at least ``total``); the same seed gives the same subset."""
    if count <= 0 or count >= total:
        return list(range(total))
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count].tolist()
