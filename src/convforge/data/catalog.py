"""Datasets by name: ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn``, ``digits``,
or a path to an ImageFolder directory.

Small datasets are returned whole as one uint8 tensor (N×C×H×W) with int64 labels;
see :mod:`convforge.data.tensor_loader` for the fast batch iterator over them.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

import numpy as np
import torch

from convforge.data import roots
from convforge.data.cifar import read_cifar
from convforge.data.idx import read_idx
from convforge.data.subset import seeded_indices
from convforge.errors import ConvforgeError, InvalidValueError

SPLITS = ("train", "test")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]  # fmt: skip


@dataclass
class ImageTensors:
    """One split of a dataset held in memory: uint8 images N×C×H×W and int64 labels."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    source: str = ""
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, count: int, seed: int = 0) -> ImageTensors:
        """A random subset of ``count`` examples (all if ``count`` >= the size), same seed, same subset."""
        if count >= len(self):
            return self
        index = torch.tensor(seeded_indices(len(self), count, seed))
        return ImageTensors(self.name, self.split, self.images[index], self.labels[index], self.classes,
                            self.source, self.mean, self.std)  # fmt: skip


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, on the 0–1 scale."""
    x = images.to(torch.float64).div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).tolist())


# ---------------------------------------------------------------- finders: root -> files, or None

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for stem in _IDX_FILES[split]:
        for suffix in (".gz", ""):
            if (folder / (stem + suffix)).is_file():
                found.append(folder / (stem + suffix))
                break
    return (found[0], found[1]) if len(found) == 2 else None


def _load_idx(name: str, folder: Path, split: str, classes: list[str]) -> ImageTensors:
    images_path, labels_path = _find_idx(folder, split)  # type: ignore[misc]
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or len(images) != len(labels):
        raise ConvforgeError(f"{images_path} and {labels_path} do not hold matching images and labels")
    return ImageTensors(name, split, torch.from_numpy(images.copy()).unsqueeze(1),
                        torch.from_numpy(labels.astype(np.int64)), classes, str(folder))  # fmt: skip


def _find_cifar(folder: Path, variant: str) -> Path | None:
    layout_folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[variant]
    if (folder / layout_folder).is_dir():
        return folder / layout_folder
    archive_stem = {"cifar10": "cifar-10-python", "cifar100": "cifar-100-python"}[variant]
    for suffix in (".tar.gz", ".tar.xz", ".tgz", ".tar"):
        if (folder / (archive_stem + suffix)).is_file():
            return folder / (archive_stem + suffix)
    return None


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one named dataset."""

    name: str
    subfolders: list[str]
    how_to_get: str
    torchvision_class: str | None = None


SPECS = {
    "mnist": DatasetSpec("mnist", ["MNIST/raw", "raw"], "pass --data-root to a folder with the four MNIST IDX "
                         "files (train-images-idx3-ubyte.gz, ...), or run once online to download them", "MNIST"),
    "fashion-mnist": DatasetSpec("fashion-mnist", ["FashionMNIST/raw", "raw"], "install the Debian package "
                                 "dataset-fashion-mnist (apt-get install dataset-fashion-mnist), pass --data-root to "
                                 "a folder with its four IDX files, or run once online to download them",
                                 "FashionMNIST"),
    "cifar10": DatasetSpec("cifar10", [], "pass --data-root to a folder holding cifar-10-batches-py/ or "
                           "cifar-10-python.tar.gz, or run once online to download it", "CIFAR10"),
    "cifar100": DatasetSpec("cifar100", [], "pass --data-root to a folder holding cifar-100-python/ or "
                            "cifar-100-python.tar.gz, or run once online to download it", "CIFAR100"),
    "svhn": DatasetSpec("svhn", [], "pass --data-root to a folder holding train_32x32.mat and test_32x32.mat, "
                        "or run once online to download them", "SVHN"),
    "digits": DatasetSpec("digits", [], "install scikit-learn, which ships this dataset"),
}  # fmt: skip
NAMES = tuple(SPECS)


def _try_read(spec: DatasetSpec, folder: Path, split: str) -> ImageTensors | None:
    if spec.name in ("mnist", "fashion-mnist"):
        if _find_idx(folder, split) is None:
            return None
        classes = [str(i) for i in range(10)] if spec.name == "mnist" else FASHION_CLASSES
        return _load_idx(spec.name, folder, split, classes)
    if spec.name in ("cifar10", "cifar100"):
        source = _find_cifar(folder, spec.name)
        if source is None:
            return None
        images, labels, classes = read_cifar(source, spec.name, split)
        return ImageTensors(spec.name, split, torch.from_numpy(images), torch.from_numpy(labels), classes,
                            str(source))  # fmt: skip
    if spec.name == "svhn":
        mat = folder / f"{split}_32x32.mat"
        if not mat.is_file():
            return None
        from torchvision.datasets import SVHN

        data = SVHN(str(folder), split=split, download=False)
        labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64))
        return ImageTensors("svhn", split, torch.from_numpy(np.asarray(data.data)), labels,
                            [str(i) for i in range(10)], str(mat))  # fmt: skip
    return None


def _load_digits(split: str) -> ImageTensors:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ConvforgeError("the digits dataset comes with scikit-learn: pip install scikit-learn") from err
    bunch = load_digits()
    images = torch.from_numpy((bunch.images * 16).clip(0, 255).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(labels))  # a fixed 80/20 split
    index = order[:cut] if split == "train" else order[cut:]
    return ImageTensors("digits", split, images[index], labels[index], [str(i) for i in range(10)], "scikit-learn")


def _download(spec: DatasetSpec, split: str) -> ImageTensors | None:
    """Fetch the dataset with torchvision into the download cache; None when offline or refused."""
    if spec.torchvision_class is None or os.environ.get("CONVFORGE_OFFLINE"):
        return None
    import torchvision.datasets as tvd

    target = roots.download_cache()
    cls = getattr(tvd, spec.torchvision_class)
    try:
        if spec.name == "svhn":
            cls(str(target / spec.name), split=split, download=True)
        else:
            cls(str(target / spec.name if spec.name not in ("cifar10", "cifar100") else target), train=split == "train",
                download=True)  # fmt: skip
    except (OSError, RuntimeError, ValueError, EOFError, tarfile.TarError, zipfile.BadZipFile, HTTPException):
        # offline, refused, or a partial file: fall through to the "not found" message
        return None
    for folder in roots.expand(target, spec.name, spec.subfolders):
        found = _try_read(spec, folder, split)
        if found is not None:
            return found
    return None


def load_dataset(name: str, split: str = "train", root: str | Path | None = None,
                 download: bool = True) -> ImageTensors:  # fmt: skip
    """Load one split of a named dataset into memory, with its per-channel mean and std.

    ``root`` is searched first, then ``$CONVFORGE_DATA``, known system locations and the
    download cache; when nothing is found and ``download`` is set, torchvision fetches it.
    The mean and std (0–1 scale) are those of the training split.
    """
    key = name.lower()
    if key not in SPECS and Path(name).is_dir():
        raise InvalidValueError(f"{name} is a folder, but not an image-folder dataset: convforge reads "
                                f"{name}/train/<class>/<images> and {name}/val/<class>/<images>")  # fmt: skip
    if key not in SPECS:
        raise InvalidValueError(
            f"unknown dataset {name!r}; known names are {', '.join(NAMES)}, or give the path of an ImageFolder "
            "directory"
        )
    if split not in SPLITS:
        raise InvalidValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    spec = SPECS[key]
    if key == "digits":
        data = _load_digits(split)
    else:
        searched = roots.candidate_roots(key, root)
        data = None
        for base in searched:
            for folder in roots.expand(base, key, spec.subfolders):
                data = _try_read(spec, folder, split)
                if data is not None:
                    break
            if data is not None:
                break
        if data is None and download:
            data = _download(spec, split)
        if data is None:
            looked = ", ".join(str(p) for p in dict.fromkeys(searched))
            raise ConvforgeError(f"dataset {name!r} ({split}) was not found; looked in {looked} and their "
                                 f"{key}/ subfolders. To get it: {spec.how_to_get}")  # fmt: skip
    if split == "train":
        data.mean, data.std = channel_stats(data.images)
        _TRAIN_STATS[(key, str(root), os.environ.get("CONVFORGE_DATA"))] = (data.mean, data.std)
    else:  # the test split is normalised with the training statistics, computed once per process
        cache_key = (key, str(root), os.environ.get("CONVFORGE_DATA"))
        if cache_key not in _TRAIN_STATS:
            load_dataset(name, "train", root, download)
        data.mean, data.std = _TRAIN_STATS[cache_key]
    return data


# (dataset, root, $CONVFORGE_DATA) -> training mean and std, so that loading the test
# split after the training split does not read the training files again
_TRAIN_STATS: dict[tuple, tuple[tuple[float, ...], tuple[float, ...]]] = {}
