"""Super-resolution data: folders of HR images (and their LR inputs), as luma, in patches or whole.

A dataset is named or given as a path:

- ``t91``, ``set5``, ``set14``, ``bsd100``, ``urban100``, ``div2k`` are looked up under the data
  roots (``--data-root``, ``$CONVFORGE_DATA``), in ``sr/train/<Name>``, ``sr/test/<Name>`` or
  ``<Name>``;
- a path is a folder of images (HR only), or a folder laid out as ``x<scale>/HR`` and
  ``x<scale>/LR`` (or ``HR`` and ``LR``) with the same file names.

Where no LR images are given, they are made from the HR images (cropped to a multiple
of the scale) with :func:`convforge.data.resize.imresize`, as the SR papers do. Models
see the Y channel of BT.601 on the 0–1 scale (``rgb_to_y``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from convforge.data import roots
from convforge.data.color import rgb_to_y
from convforge.data.image_file import read_image
from convforge.data.resize import imresize
from convforge.data.subset import seeded_indices
from convforge.errors import ConvforgeError, InvalidValueError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
NAMED = {"t91": "T91", "set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "urban100": "Urban100",
         "div2k": "DIV2K"}  # fmt: skip


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def resolve_sr_folder(data: str, scale: int, root: str | Path | None = None) -> tuple[Path, Path | None]:
    """(HR folder, LR folder or None) for a dataset name or path, at ``scale``."""
    path = Path(data).expanduser()
    candidates = [path] if path.exists() or data.lower() not in NAMED else []
    if data.lower() in NAMED:
        name = NAMED[data.lower()]
        for base in roots.candidate_roots(data.lower(), root):
            candidates += [base / "sr" / "train" / name, base / "sr" / "test" / name, base / name]
    for folder in candidates:
        for paired in (folder / f"x{scale}", folder):
            if (paired / "HR").is_dir():
                lr = paired / "LR"
                return paired / "HR", lr if lr.is_dir() else None
        if folder.is_dir() and _images_in(folder):
            return folder, None
    searched = ", ".join(str(c) for c in candidates) or data
    raise ConvforgeError(
        f"no super-resolution images found for {data!r} at scale {scale} (looked in {searched}); pass a folder of "
        f"images, or one with x{scale}/HR and x{scale}/LR, or name one of {', '.join(NAMED)} with --data-root"
    )


@dataclass
class SRImages:
    """Whole images of one dataset as luma: ``hr[i]`` is 1×(s·h)×(s·w), ``lr[i]`` is 1×h×w, float 0–1."""

    name: str
    scale: int
    hr: list[torch.Tensor]
    lr: list[torch.Tensor]
    files: list[str]

    def __len__(self) -> int:
        return len(self.hr)

    def subset(self, count: int, seed: int = 0) -> SRImages:
        """``count`` of the images drawn with ``seed`` (all of them when ``count`` is 0)."""
        keep = seeded_indices(len(self), count, seed)
        return SRImages(self.name, self.scale, [self.hr[i] for i in keep], [self.lr[i] for i in keep],
                        [self.files[i] for i in keep])  # fmt: skip


def load_sr_images(data: str, scale: int, root: str | Path | None = None) -> SRImages:
    """Read a dataset's HR images and their LR inputs (given, or made by bicubic imresize), as Y."""
    if not isinstance(scale, int) or scale < 2:
        raise InvalidValueError(f"scale must be an integer >= 2, got {scale!r}")
    hr_folder, lr_folder = resolve_sr_folder(data, scale, root)
    paths = _images_in(hr_folder)
    if not paths:
        raise ConvforgeError(f"{hr_folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    hr_list, lr_list, files = [], [], []
    for path in paths:
        hr = read_image(path)
        height, width = (hr.shape[-2] // scale) * scale, (hr.shape[-1] // scale) * scale
        if not height or not width:
            raise ConvforgeError(f"{path} is {tuple(hr.shape[-2:])} pixels: too small to shrink by {scale}")
        hr = hr[:, :height, :width]
        if lr_folder is not None:
            lr_path = lr_folder / path.name
            if not lr_path.is_file():
                raise ConvforgeError(f"{path} has no LR counterpart {lr_path}")
            lr = read_image(lr_path)
            if tuple(lr.shape[-2:]) != (height // scale, width // scale):
                raise ConvforgeError(
                    f"{lr_path} is {tuple(lr.shape[-2:])}, expected {(height // scale, width // scale)} for ×{scale}"
                )
        else:
            lr = imresize(hr, 1 / scale)
        hr_list.append(rgb_to_y(hr))
        lr_list.append(rgb_to_y(lr))
        files.append(path.name)
    return SRImages(str(data), scale, hr_list, lr_list, files)


def augment_dihedral(lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """The same random flip and 90° rotation (one of 8) applied to a pair of N×C×H×W batches, per image."""
    choice = torch.randint(0, 8, (lr.shape[0],), generator=generator)
    out_lr, out_hr = lr.clone(), hr.clone()
    for k in range(8):
        picked = choice == k
        if not picked.any():
            continue
        a, b = lr[picked], hr[picked]
        if k & 4:
            a, b = a.flip(-1), b.flip(-1)
        a, b = torch.rot90(a, k & 3, (-2, -1)), torch.rot90(b, k & 3, (-2, -1))
        out_lr[picked], out_hr[picked] = a, b
    return out_lr, out_hr


class PatchLoader:
    """Random aligned (LR, HR) patch batches from whole images, with flips and rotations.

    An epoch draws ``patches_per_image`` patches from every image (of ``patch`` LR pixels
    a side; HR patches are ``scale`` times larger). Images smaller than a patch are left
    out with a warning. Seeded by (seed, epoch).
    """

    def __init__(self, images: SRImages, patch: int, batch_size: int, patches_per_image: int = 32,
                 augment: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:  # fmt: skip
        fits = [i for i, lr in enumerate(images.lr) if min(lr.shape[-2:]) >= patch]
        if not fits:
            raise InvalidValueError(f"LR patch size {patch} is larger than every LR image of {images.name}")
        if len(fits) < len(images):
            left_out = [f for i, f in enumerate(images.files) if i not in fits]
            warnings.warn(
                f"{len(left_out)} LR image(s) of {images.name} are smaller than the {patch}-pixel patch and are left "
                f"out of training: {', '.join(left_out[:5])}{' …' if len(left_out) > 5 else ''}",
                stacklevel=2,
            )
            images = SRImages(images.name, images.scale, [images.hr[i] for i in fits], [images.lr[i] for i in fits],
                              [images.files[i] for i in fits])  # fmt: skip
        self.images, self.patch, self.batch_size = images, patch, batch_size
        self.patches_per_image, self.augment, self.seed = patches_per_image, augment, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_examples(self) -> int:
        """Patches this rank draws per epoch."""
        return len(range(self.rank, len(self.images) * self.patches_per_image, self.world_size))

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        scale, patch = self.images.scale, self.patch
        count = len(self.images) * self.patches_per_image
        which = torch.arange(len(self.images)).repeat_interleave(self.patches_per_image)
        order = which[torch.randperm(count, generator=generator)][self.rank :: self.world_size]
        for start in range(0, len(order), self.batch_size):
            lr_batch, hr_batch = [], []
            for i in order[start : start + self.batch_size].tolist():
                lr, hr = self.images.lr[i], self.images.hr[i]
                top = int(torch.randint(0, lr.shape[-2] - patch + 1, (), generator=generator))
                left = int(torch.randint(0, lr.shape[-1] - patch + 1, (), generator=generator))
                lr_batch.append(lr[:, top : top + patch, left : left + patch])
                hr_batch.append(hr[:, top * scale : (top + patch) * scale, left * scale : (left + patch) * scale])
            lr_t, hr_t = torch.stack(lr_batch), torch.stack(hr_batch)
            if self.augment:
                lr_t, hr_t = augment_dihedral(lr_t, hr_t, generator)
            yield lr_t, hr_t


class WholeImageLoader:
    """(LR, HR) pairs of whole images, one image per batch (their sizes differ)."""

    def __init__(self, images: SRImages, rank: int = 0, world_size: int = 1) -> None:
        self.images, self.rank, self.world_size = images, rank, world_size

    def __len__(self) -> int:
        return len(range(self.rank, len(self.images), self.world_size))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(self.rank, len(self.images), self.world_size):
            yield self.images.lr[i][None], self.images.hr[i][None]
