"""ImageFolder datasets (``root/train/<class>/*.png``, ``root/val/<class>/*.png``) read by DataLoader workers.

For data too large to hold in memory. Training images get a random resized crop and
a horizontal flip; evaluation images are resized and centre-cropped. Both are
normalised with the ImageNet mean and std. Shuffling is seeded by (seed, epoch), and
with several processes each rank reads its own shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from convforge.data.image_file import ImageReadError, open_rgb
from convforge.errors import ConvforgeError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_SPLITS = ("val", "test")


def is_image_folder(path: str | Path) -> bool:
    """True when ``path`` holds a ``train/`` folder of class folders."""
    return (Path(path) / "train").is_dir()


def _split_folder(root: Path, split: str) -> Path:
    if split == "train":
        return root / "train"
    for name in EVAL_SPLITS:
        if (root / name).is_dir():
            return root / name
    raise ConvforgeError(f"{root} has no val/ or test/ folder of class folders to evaluate on")


class FolderLoader:
    """Batches (images, labels) from an ImageFolder split, with the TensorLoader's interface."""

    def __init__(self, root: str | Path, split: str, image_size: int, batch_size: int, workers: int = 2,
                 seed: int = 0, rank: int = 0, world_size: int = 1, channels_last: bool = False,
                 augment: bool | None = None) -> None:  # fmt: skip
        """``augment`` (default: for the train split only) chooses training crops and flips over the evaluation
        resize and centre crop."""
        from torchvision import datasets, transforms

        folder = _split_folder(Path(root), split)
        self.train = split == "train"
        normalise = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        if self.train if augment is None else augment:
            transform = transforms.Compose(
                [
                    transforms.RandomResizedCrop(image_size, scale=(0.35, 1.0)),
                    transforms.RandomHorizontalFlip(),
                    transforms.ToTensor(),
                    normalise,
                ]
            )
        else:
            transform = transforms.Compose(
                [
                    transforms.Resize(int(round(image_size * 8 / 7))),
                    transforms.CenterCrop(image_size),
                    transforms.ToTensor(),
                    normalise,
                ]
            )
        try:
            self.dataset = datasets.ImageFolder(str(folder), transform=transform, loader=open_rgb)
        except (FileNotFoundError, RuntimeError) as err:
            raise ConvforgeError(f"{folder} is not a folder of class folders with images: {err}") from err
        self.classes = list(self.dataset.classes)
        self.batch_size, self.workers, self.seed = batch_size, workers, seed
        self.rank, self.world_size = rank, world_size
        self.channels_last = channels_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _sampler(self):
        if self.world_size > 1 and not self.train:  # every image once across ranks, no padding
            return list(range(self.rank, len(self.dataset), self.world_size))
        if self.world_size > 1:
            sampler = DistributedSampler(self.dataset, self.world_size, self.rank, shuffle=self.train, seed=self.seed,
                                         drop_last=self.train)  # fmt: skip
            sampler.set_epoch(self.epoch)
            return sampler
        if self.train:
            return RandomSampler(
                self.dataset, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            )
        return SequentialSampler(self.dataset)

    @property
    def num_examples(self) -> int:
        count = len(self._sampler())
        return count - count % self.batch_size if self.train else count

    def __len__(self) -> int:
        count = len(self._sampler())
        return count // self.batch_size if self.train else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = DataLoader(self.dataset, self.batch_size, sampler=self._sampler(), num_workers=self.workers,
                            drop_last=self.train, persistent_workers=False)  # fmt: skip
        try:
            for images, labels in loader:
                if self.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                yield images, labels
        except ImageReadError as err:  # from a worker, its message is the worker's traceback: keep its last line
            raise ImageReadError(str(err).strip().splitlines()[-1].split("ImageReadError: ", 1)[-1]) from None
