"""Batches for detection: letterboxed, optionally augmented images with their boxes.

A training batch is ``(images, targets)``: images float (B, 3, S, S) in [0, 1], targets
``(N, 6)`` rows of (image index in the batch, class, x1, y1, x2, y2) in input pixels.
An evaluation batch adds, per image, its :class:`LetterboxGeometry` and its ground
truth in original-image pixels, for scoring on the original images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from convforge.data.detection_augment import flip_horizontal, jitter_hsv, scale_translate
from convforge.data.image_file import read_image
from convforge.data.letterbox import LetterboxGeometry, letterbox, resize_long_side, to_rgb
from convforge.data.yolo_detection import DetectionDataset


@dataclass
class Augmentation:
    """Training augmentation (Ultralytics' defaults): zoom ±scale, shift ±translate, flip probability, HSV gains."""

    scale: float = 0.5
    translate: float = 0.1
    flip: float = 0.5
    hsv: tuple[float, float, float] = (0.015, 0.7, 0.4)


@dataclass
class EvalBatch:
    """Letterboxed images, targets as in training, and what scoring on the original images needs."""

    images: torch.Tensor
    targets: torch.Tensor
    geometry: list[LetterboxGeometry]
    gt_boxes: list[torch.Tensor]  # per image, xyxy in original pixels
    gt_classes: list[torch.Tensor]
    files: list[str]


def normalised_to_pixels(labels: np.ndarray, width: float, height: float) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLO rows (class, cx, cy, w, h normalised) → (xyxy pixel boxes, classes)."""
    rows = torch.from_numpy(labels).reshape(-1, 5)
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    boxes = torch.stack(((cx - w / 2).clamp(0, width), (cy - h / 2).clamp(0, height), (cx + w / 2).clamp(0, width),
                         (cy + h / 2).clamp(0, height)), 1)  # fmt: skip
    return boxes, rows[:, 0].long()


class DetectionLoader:
    """Iterates a :class:`DetectionDataset` in batches; ``augment=None`` letterboxes only (evaluation).

    Images are decoded once and kept in memory, resized so their longer side is the
    input size, when the dataset is small enough (``cache_mib``); otherwise they are
    decoded on every pass.
    """

    def __init__(self, dataset: DetectionDataset, image_size: int, batch_size: int, augment: Augmentation | None,
                 shuffle: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1,
                 cache_mib: float = 2048) -> None:  # fmt: skip
        self.dataset, self.size, self.batch_size = dataset, image_size, batch_size
        self.augment, self.shuffle, self.seed = augment, shuffle, seed
        order = list(range(len(dataset)))
        if world_size > 1 and augment is not None:
            # every process takes the same number of batches (the first images fill up the last round)
            order += order[: (-len(order)) % world_size]
        self.indices = order[rank::world_size]
        self.epoch = 0
        self.channels_last = False
        self.cache_enabled = len(dataset) * 3 * image_size**2 / 2**20 <= cache_mib
        self._cache: dict[int, tuple[torch.Tensor, float, tuple[int, int]]] = {}

    @property
    def num_examples(self) -> int:
        return len(self.indices)

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _resized(self, index: int) -> tuple[torch.Tensor, float, tuple[int, int]]:
        """The image with its longer side at the input size, the ratio, and the original (height, width)."""
        if index in self._cache:
            return self._cache[index]
        image = to_rgb(read_image(self.dataset.images[index]))
        original = (int(image.shape[-2]), int(image.shape[-1]))
        resized, ratio = resize_long_side(image, self.size)
        entry = (resized.contiguous(), ratio, original)
        if self.cache_enabled:
            self._cache[index] = entry
        return entry

    def _training_sample(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        image, _, _ = self._resized(index)
        boxes, classes = normalised_to_pixels(self.dataset.labels[index], image.shape[-1], image.shape[-2])
        aug = self.augment
        assert aug is not None
        image, boxes, keep = scale_translate(image, boxes, self.size, aug.scale, aug.translate, generator)
        boxes, classes = boxes[keep], classes[keep]
        if torch.rand((), generator=generator).item() < aug.flip:
            image, boxes = flip_horizontal(image, boxes)
        image = jitter_hsv(image, aug.hsv, generator)
        return image, torch.cat((classes[:, None].float(), boxes), 1)

    def __iter__(self) -> Iterator:
        order = list(self.indices)
        generator = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        if self.shuffle:
            order = [order[i] for i in torch.randperm(len(order), generator=generator).tolist()]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            if self.augment is not None:
                samples = [self._training_sample(i, generator) for i in chunk]
                yield (
                    self._layout(torch.stack([s[0] for s in samples]).float().div_(255)),
                    _targets([s[1] for s in samples]),
                )
            else:
                batch = self._eval_batch(chunk)
                batch.images = self._layout(batch.images)
                yield batch

    def _layout(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def _eval_batch(self, chunk: list[int]) -> EvalBatch:
        images, rows, geometry, gt_boxes, gt_classes = [], [], [], [], []
        for index in chunk:
            resized, ratio, original = self._resized(index)
            canvas, placed = letterbox(resized, self.size)
            geo = LetterboxGeometry(original, ratio * placed.ratio, placed.pad)
            boxes, classes = normalised_to_pixels(self.dataset.labels[index], original[1], original[0])
            letterboxed = boxes * geo.ratio + torch.tensor([*geo.pad, *geo.pad])
            images.append(canvas)
            rows.append(torch.cat((classes[:, None].float(), letterboxed), 1))
            geometry.append(geo)
            gt_boxes.append(boxes)
            gt_classes.append(classes)
        files = [str(self.dataset.images[i]) for i in chunk]
        return EvalBatch(torch.stack(images).float().div_(255), _targets(rows), geometry, gt_boxes, gt_classes, files)


def _targets(per_image: list[torch.Tensor]) -> torch.Tensor:
    """Per-image (n, 5) class+box rows → one (N, 6) tensor with the image index in front."""
    rows = [torch.cat((torch.full((len(r), 1), float(i)), r), 1) for i, r in enumerate(per_image)]
    return torch.cat(rows) if rows else torch.zeros(0, 6)
