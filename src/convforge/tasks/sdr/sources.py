"""Where the ``sdr`` task's (X, Y) come from.

- ``sim:<design>``: a simulation design of :mod:`convforge.sdr.simulations` (``sim:spd-outliers``), training
  sample seeded by the recipe's seed; validation and test samples (never corrupted) by two others.
- ``rotated:<dataset>``: images of a convforge dataset (``rotated:mnist``, ``rotated:fashion-mnist``), each
  rotated by an angle θ drawn uniformly from [0, 2π); the response is (cos θ, sin θ) on the circle, and the
  truth is the same point. Training and validation images are disjoint draws from the train split; the test
  images come from the test split, used only by ``convforge eval RUN --data test``.
- a ``.npz`` file with arrays ``x`` (``[n, ...]``) and ``y`` (``[n, ...]``), and optionally ``truth``; a fifth of
  it, drawn with the seed, validates (it has no separate test split).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.sdr.simulations import design_names, simulate

VALIDATION_SEED = 10_007  # the test sample's seed offset from the training one
HELD_OUT_SEED = 20_011  # the validation sample's, for simulations and rotated images


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
    """Training, validation and (where the source has one) test splits, the response metric the source implies,
    and a description."""

    train: SdrSplit
    val: SdrSplit
    metric: str | None
    source: str
    test: SdrSplit | None = None


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
    from convforge.data.subset import seeded_indices

    train = load_dataset(name, "train", root=getattr(recipe, "data_root", None))
    test = load_dataset(name, "test", root=getattr(recipe, "data_root", None))
    seed, count = getattr(recipe, "seed", 0), getattr(recipe, "val_subset", 0) or 2000
    kept = seeded_indices(len(train), getattr(recipe, "train_subset", 0) or max(len(train) - count, 1), seed)
    chosen = set(kept)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + HELD_OUT_SEED)).tolist()
    held_out = [i for i in order if i not in chosen][:count]  # validation: train-split images never trained on
    test = test.subset(count, seed)
    x, y = rotate_images(train.images[kept], seed)
    vx, vy = rotate_images(train.images[held_out], seed + HELD_OUT_SEED)
    tx, ty = rotate_images(test.images, seed + VALIDATION_SEED)
    return SdrData(SdrSplit(x, y, y), SdrSplit(vx, vy, vy), "geodesic", f"rotated:{name}", SdrSplit(tx, ty, ty))


def _numeric(path: Path, name: str, array: np.ndarray, rows: int | None = None) -> np.ndarray:
    """``array`` as real numbers with at least one row axis (a vector becomes one column); else one sentence."""
    if array.dtype.kind not in "fiub" or array.ndim == 0:
        raise ConvforgeError(f"{path}: {name} must be an array of real numbers with one row per example, got "
                             f"{array.dtype} of shape {list(array.shape)}")  # fmt: skip
    if rows is not None and len(array) != rows:
        raise ConvforgeError(f"{path}: {name} has {len(array)} rows, x has {rows}")
    if not np.isfinite(array.astype(np.float64)).all():
        raise ConvforgeError(f"{path}: {name} holds values that are not finite")
    return array[:, None] if array.ndim == 1 else array


def _npz(path: Path, seed: int) -> SdrData:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k]) for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as err:
        raise ConvforgeError(f"{path} is not a readable .npz file of arrays: {err}") from err
    if "x" not in arrays or "y" not in arrays:
        raise ConvforgeError(f"{path} must hold arrays named x and y (it has {', '.join(arrays) or 'none'})")
    x = _numeric(path, "x", arrays["x"])
    if len(x) < 10:
        raise ConvforgeError(f"{path}: x has {len(x)} rows; use at least 10 examples")
    y = _numeric(path, "y", arrays["y"], len(x))
    truth = _numeric(path, "truth", arrays["truth"], len(x)) if "truth" in arrays else None
    if truth is not None and truth.ndim != 2:
        raise ConvforgeError(f"{path}: truth must be [n, k], got shape {list(truth.shape)}")
    order = np.random.default_rng(seed).permutation(len(x))
    cut = len(x) - max(len(x) // 5, 2)

    def split(index: np.ndarray) -> SdrSplit:
        t = None if truth is None else torch.from_numpy(truth[index].astype(np.float64))
        return SdrSplit(torch.from_numpy(x[index].astype(np.float32)), torch.from_numpy(y[index].astype(np.float64)),
                        t)  # fmt: skip

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
        val = simulate(design, val_size, seed + HELD_OUT_SEED, corrupt=False)
        test = simulate(design, val_size, seed + VALIDATION_SEED, corrupt=False)
        return SdrData(SdrSplit(train.x.float(), train.y, train.truth), SdrSplit(val.x.float(), val.y, val.truth),
                       train.metric, source, SdrSplit(test.x.float(), test.y, test.truth))  # fmt: skip
    if source.startswith("rotated:"):
        return _rotated(source[len("rotated:") :], recipe)
    if Path(source).suffix.lower() == ".npz":
        if not Path(source).is_file():
            raise ConvforgeError(f"the SDR data file {source} does not exist")
        return _npz(Path(source), seed)
    raise InvalidValueError(f"SDR data {source!r} is not understood; use sim:<design> ({', '.join(design_names())}), "
                            "rotated:<dataset> (e.g. rotated:mnist) or a .npz file with arrays x and y")  # fmt: skip
