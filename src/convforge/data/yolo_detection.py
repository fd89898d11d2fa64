"""YOLO-format detection datasets: a dataset YAML, image folders, one ``.txt`` label file per image.

A dataset YAML (the Ultralytics layout)::

    path: .                  # the dataset root, relative to this file (default: its folder)
    train: images/train2017  # a folder of images, a .txt list of image paths, or a list of either
    val: images/val2017
    names: {0: person, 1: bicycle}   # or a list

The labels of ``.../images/x.jpg`` are in ``.../labels/x.txt``, one object per line:
``class cx cy w h``, normalised to the image size. An image without a label file
has no objects (a warning says how many); a label file without an image is skipped
(with a warning). ``--data`` may also name a dataset YAML found under the data roots
(``coco128`` finds ``coco128/coco128.yaml``).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convforge.data import roots
from convforge.data.subset import seeded_indices
from convforge.errors import ConvforgeError
from convforge.mapping_file import load_yaml, yaml_error_sentence

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class DatasetWarning(UserWarning):
    """Something in a dataset that convforge worked around (a missing file, say)."""


@dataclass
class DetectionDataset:
    """One split: image paths, their labels ``(n, 5)`` as class, cx, cy, w, h (normalised), and class names."""

    images: list[Path]
    labels: list[np.ndarray]
    names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, count: int, seed: int = 0) -> DetectionDataset:
        """``count`` of the images (with their labels) drawn with ``seed``; all of them when ``count`` is 0."""
        keep = seeded_indices(len(self), count, seed)
        return DetectionDataset([self.images[i] for i in keep], [self.labels[i] for i in keep], self.names,
                                self.source)  # fmt: skip

    @property
    def num_boxes(self) -> int:
        return sum(len(label) for label in self.labels)


def resolve_dataset_yaml(data: str, root: str | Path | None = None) -> Path:
    """The dataset YAML a ``--data`` value means: a path to one, or the name of one under the data roots."""
    path = Path(data).expanduser()
    if path.is_file():
        return path
    name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    candidates = []
    for base in roots.candidate_roots(name, root):
        candidates += [base / f"{name}.yaml", base / name / f"{name}.yaml", base / name / "data.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(c) for c in [path, *candidates])
    raise ConvforgeError(f"no dataset YAML for {data!r} (looked for {searched}); pass the path of a YAML with "
                         "path, train, val and names, or set --data-root")  # fmt: skip


def read_dataset_yaml(path: str | Path) -> dict[str, Any]:
    """The dataset YAML, checked: ``names`` as a list, ``root`` the resolved dataset folder."""
    import yaml

    path = Path(path)
    try:
        values = load_yaml(path) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConvforgeError(f"could not read the dataset YAML {path}: {yaml_error_sentence(err)}") from err
    if not isinstance(values, dict):
        raise ConvforgeError(f"the dataset YAML {path} must be a mapping with path, train, val and names")
    names = values.get("names")
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise ConvforgeError(f"{path}: names must be numbered 0 to {len(names) - 1}, got keys {sorted(names)}")
        names = [str(names[i]) for i in range(len(names))]
    if not isinstance(names, list) or not names:
        raise ConvforgeError(f"{path}: names must be a non-empty list or a mapping of class index to name")
    if "nc" in values and values["nc"] != len(names):
        raise ConvforgeError(f"{path}: nc = {values['nc']} but {len(names)} names are given")
    for split in ("train", "val"):
        if split not in values:
            raise ConvforgeError(f"{path}: the field {split!r} is missing (a folder or list of images)")
    root = Path(values.get("path") or ".").expanduser()
    values["root"] = root if root.is_absolute() else (path.parent / root).resolve()
    values["names"] = [str(n) for n in names]
    return values


def label_path(image: Path) -> Path:
    """``.../images/.../x.jpg`` → ``.../labels/.../x.txt`` (the last ``images`` folder becomes ``labels``)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _list_images(entry: Any, root: Path, source: Path) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    images: list[Path] = []
    for item in entries:
        path = Path(str(item)).expanduser()
        path = path if path.is_absolute() else root / path
        if path.is_dir():
            images += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file() and path.suffix == ".txt":
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            images += [(Path(line) if Path(line).is_absolute() else path.parent / line) for line in lines]
        else:
            raise ConvforgeError(f"{source}: {item} is neither a folder of images nor a .txt list ({path})")
    return images


def read_labels(path: Path, num_classes: int) -> np.ndarray:
    """The ``(n, 5)`` float32 rows of one label file; an error names the file, line and problem."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(f) for f in fields[:5]]
        except ValueError as err:
            raise ConvforgeError(f"{path}:{number}: expected 'class cx cy w h' numbers, got {line!r}") from err
        if len(fields) != 5:
            raise ConvforgeError(f"{path}:{number}: expected 5 fields 'class cx cy w h', got {len(fields)}")
        if not all(math.isfinite(v) for v in values):
            raise ConvforgeError(f"{path}:{number}: the values must be finite numbers, got {line.strip()!r}")
        if not values[0].is_integer() or not 0 <= values[0] < num_classes:
            raise ConvforgeError(f"{path}:{number}: class {fields[0]} is not one of 0 to {num_classes - 1}")
        rows.append(values)
    labels = np.array(rows, dtype=np.float32).reshape(-1, 5)
    if len(labels):
        labels[:, 1:] = labels[:, 1:].clip(0, 1)
    return labels


def load_detection_split(data: str, split: str = "train", root: str | Path | None = None) -> DetectionDataset:
    """The images and labels of ``split`` (train or val) of the dataset ``data`` (a YAML path or name)."""
    yaml_path = resolve_dataset_yaml(data, root)
    values = read_dataset_yaml(yaml_path)
    names = values["names"]
    images = _list_images(values[split], values["root"], yaml_path)
    missing_files = [p for p in images if not p.is_file()]
    if missing_files:
        warnings.warn(f"{len(missing_files)} listed image(s) of {split} do not exist and are skipped, "
                      f"e.g. {missing_files[0]}", DatasetWarning, stacklevel=2)  # fmt: skip
        images = [p for p in images if p.is_file()]
    if not images:
        raise ConvforgeError(f"{yaml_path}: the {split} split {values[split]!r} has no images")
    labels, unlabelled = [], []
    for image in images:
        path = label_path(image)
        if path.is_file():
            labels.append(read_labels(path, len(names)))
        else:
            unlabelled.append(image)
            labels.append(np.zeros((0, 5), dtype=np.float32))
    if unlabelled:
        warnings.warn(f"{len(unlabelled)} image(s) of {split} have no label file and count as background "
                      f"(no objects), e.g. {unlabelled[0].name}", DatasetWarning, stacklevel=2)  # fmt: skip
    orphans = _orphan_labels(images)
    if orphans:
        warnings.warn(f"{len(orphans)} label file(s) have no image and are ignored, e.g. {orphans[0]}",
                      DatasetWarning, stacklevel=2)  # fmt: skip
    return DetectionDataset(images, labels, names, str(yaml_path))


def _orphan_labels(images: list[Path]) -> list[Path]:
    """Label files in the label folders of ``images`` whose image is not among them."""
    wanted = {label_path(p) for p in images}
    folders = {p.parent for p in wanted}
    found = [
        Path(folder) / f for folder in folders if folder.is_dir() for f in os.listdir(folder) if f.endswith(".txt")
    ]
    return sorted(p for p in found if p not in wanted)
