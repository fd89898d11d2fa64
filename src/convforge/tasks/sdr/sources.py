"""Where the ``sdr`` task's (X, Y) come from.

- ``sim:<design>``: a simulation design of :mod:`convforge.sdr.simulations` (``sim:spd-outliers``), training
  sample seeded by the recipe's seed, validation sample (never corrupted) by another.
- ``rotated:<dataset>``: images of a convforge dataset (``rotated:mnist``, ``rotated:fashion-mnist``), each
  rotated by an angle θ drawn uniformly from [0, 2π); the response is (cos θ, sin θ) on the circle, and the
  truth is the same point. Training images come from the train split, validation from the test split.
- a ``.npz`` file with arrays ``x`` (``[n, ...]``) and ``y`` (``[n, ...]``), and optionally ``truth``; a fifth of
  it, drawn with the seed, validates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.sdr.simulations import design_names, simulate

VALIDATION_SEED = 10_007  # the validation sample's seed offset from the training one


@dataclass
class SdrSplit:
    """Predictors ``x`` (float32), responses ``y`` (float64) and, when known, the true index ``truth``."""

    x: torch.Tensor
    y: torch.Tensor
    truth: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class SdrData:
    """A training and a validation split, the response metric the source implies, and a description."""

    train: SdrSplit
    val: SdrSplit
    metric: str | None
    source: str


def rotate_images(images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[n, C, H, W]`` images, each rotated by its own angle θ ~ U[0, 2π) (bilinear, zero fill), as float
    0–1; and the points (cos θ, sin θ) ``[n, 2]``."""
    from torchvision.transforms.v2 import functional as TF

    angles = torch.rand(len(images), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 * math.pi
    rotated = torch.empty(images.shape, dtype=torch.float32)
    for i, (image, angle) in enumerate(zip(images, angles.tolist())):
        turned = TF.rotate(image, math.degrees(angle), interpolation=TF.InterpolationMode.BILINEAR)
        rotated[i] = turned.to(torch.float32) / 255.0
    return rotated, torch.stack([angles.cos(), angles.sin()], 1)


def _rotated(name: str, recipe: object) -> SdrData:
    from convforge.data.catalog import load_dataset

    train = load_dataset(name, "train", root=getattr(recipe, "data_root", None))
    val = load_dataset(name, "test", root=getattr(recipe, "data_root", None))
    seed = getattr(recipe, "seed", 0)
    train = train.subset(getattr(recipe, "train_subset", 0) or len(train), seed)
    val = val.subset(getattr(recipe, "val_subset", 0) or len(val), seed)
    x, y = rotate_images(train.images, seed)
    vx, vy = rotate_images(val.images, seed + VALIDATION_SEED)
    return SdrData(SdrSplit(x, y, y), SdrSplit(vx, vy, vy), "geodesic", f"rotated:{name}")


def _npz(path: Path, seed: int) -> SdrData:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k]) for k in f.files}
    except (OSError, ValueError) as err:
        raise ConvforgeError(f"{path} is not a readable .npz file of arrays: {err}") from err
    if "x" not in arrays or "y" not in arrays:
        raise ConvforgeError(f"{path} must hold arrays named x and y (it has {', '.join(arrays) or 'none'})")
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y) or len(x) < 10 or not all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f"):
        raise ConvforgeError(f"{path}: x and y must have the same number (at least 10) of finite rows, got "
                             f"{len(x)} and {len(y)}")  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(x))
    cut = len(x) - max(len(x) // 5, 2)
    truth = arrays.get("truth")

    def split(index: np.ndarray) -> SdrSplit:
        t = None if truth is None else torch.from_numpy(truth[index]).double()
        return SdrSplit(torch.from_numpy(x[index]).float(), torch.from_numpy(y[index]).double(), t)

    return SdrData(split(order[:cut]), split(order[cut:]), None, str(path))


def load_sdr_data(source: str, recipe: object, train_size: int, val_size: int) -> SdrData:
    """The (X, Y) named by ``source`` (see the module documentation)."""
    seed = getattr(recipe, "seed", 0)
    if source.startswith("sim:"):
        design = source[4:]
        if design not in design_names():
            raise InvalidValueError(f"unknown simulation design {design!r}; use sim: and one of "
                                    f"{', '.join(design_names())}")  # fmt: skip
        train = simulate(design, train_size, seed)
        val = simulate(design, val_size, seed + VALIDATION_SEED, corrupt=False)
        return SdrData(SdrSplit(train.x.float(), train.y, train.truth), SdrSplit(val.x.float(), val.y, val.truth),
                       train.metric, source)  # fmt: skip
    if source.startswith("rotated:"):
        return _rotated(source[len("rotated:") :], recipe)
    if Path(source).suffix.lower() == ".npz":
        if not Path(source).is_file():
            raise ConvforgeError(f"the SDR data file {source} does not exist")
        return _npz(Path(source), seed)
    raise InvalidValueError(f"SDR data {source!r} is not understood; use sim:<design> ({', '.join(design_names())}), "
                            "rotated:<dataset> (e.g. rotated:mnist) or a .npz file with arrays x and y")  # fmt: skip
