"""A fast batch iterator for datasets held in memory as one uint8 tensor.

Augmentation runs on whole batches of tensors, with no per-image Python (as in
airbench): a random translation by up to ``crop_padding`` pixels (pad with reflection,
then crop), a horizontal flip of half the batch, and cutout of a square per image.
Shuffling and augmentation draw from a generator seeded by (seed, epoch), so a run
is repeatable and a resumed run sees the same batches as an uninterrupted one. With
``world_size`` > 1 each rank takes every ``world_size``-th example of the shuffled
order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from convforge.data.catalog import ImageTensors
from convforge.errors import InvalidValueError


@dataclass(frozen=True)
class Augment:
    """Batch-level augmentation: translate (pad-and-crop) by ``crop_padding`` px, flip, cutout of ``cutout`` px."""

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0

    def __post_init__(self) -> None:
        if self.crop_padding < 0 or self.cutout < 0:
            raise InvalidValueError(f"crop_padding and cutout must be >= 0, got {self.crop_padding}, {self.cutout}")

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout)


def random_translate(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by a random (dy, dx) in [-padding, padding], filling with reflection."""
    n, _, h, w = x.shape
    if padding >= min(h, w):
        raise InvalidValueError(f"crop_padding must be smaller than the image side ({min(h, w)}), got {padding}")
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # n, 1, h, 1
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # n, 1, 1, w
    batch = torch.arange(n)[:, None, None, None]
    channels = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channels, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images left to right."""
    mask = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a ``size``×``size`` square at a random centre in each image (zero is the mean after normalising)."""
    n, _, h, w = x.shape
    top = torch.randint(0, h, (n,), generator=generator)[:, None, None] - size // 2
    left = torch.randint(0, w, (n,), generator=generator)[:, None, None] - size // 2
    ys = torch.arange(h)[None, :, None]
    xs = torch.arange(w)[None, None, :]
    inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    return x.masked_fill(inside[:, None], 0.0)


class TensorLoader:
    """Batches of normalised float images and int64 labels from an :class:`ImageTensors`."""

    def __init__(
        self,
        data: ImageTensors,
        batch_size: int,
        train: bool,
        augment: Augment | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool | None = None,
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise InvalidValueError(f"batch size must be a positive integer, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.train = train
        self.augment = augment or Augment()
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.drop_last = train if drop_last is None else drop_last
        self.channels_last = channels_last
        self.epoch = 0
        self._mean = torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._inv_std = 1.0 / torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffle and augmentation of ``epoch`` (0-based)."""
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        n = len(self.data)
        if self.train:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            per_rank = n // self.world_size if self.train else math.ceil(n / self.world_size)
            order = order[self.rank :: self.world_size][:per_rank]
        return order

    @property
    def num_examples(self) -> int:
        """Examples this rank sees per epoch."""
        count = len(self._order())
        return count - count % self.batch_size if self.drop_last else count

    def __len__(self) -> int:
        count = len(self._order())
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×C×H×W → float32, scaled to 0–1 and standardised per channel."""
        return (images.to(torch.float32).div_(255.0) - self._mean) * self._inv_std

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._order()
        # each rank draws its own augmentations (rank 0 keeps the single-process stream)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 1 + self.rank * 2**32)
        augment = self.augment if self.train else Augment()
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                break
            x = self.normalise(self.data.images[index])
            if augment.crop_padding:
                x = random_translate(x, augment.crop_padding, generator)
            if augment.flip:
                x = random_flip(x, generator)
            if augment.cutout:
                x = random_cutout(x, augment.cutout, generator)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.data.labels[index]
