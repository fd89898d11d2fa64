"""The grids of the deep-versus-shallow study: which networks are trained, on what, for how long.

The paper's grid (6,912 combinations) is not published value by value; the ``paper``
grid here has that many configurations per layout pair, spread over the axes the paper
names (depth, width, kernel, activation, learning rate, seed) plus the branch scale of
the related work. ``small`` and ``medium`` are scaled down to run on a laptop CPU: they
train on a fixed subset of the training split, which sets Q = samples × classes / params.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from convforge.errors import InvalidValueError
from convforge.mapping_file import load_yaml

AXES = ("depth", "width", "kernel", "act", "lr", "branch_scale", "seed")
LAYOUTS = ("sequential", "parallel")


@dataclass(frozen=True)
class StudyGrid:
    """Axes of the grid (every combination is trained once per layout) and the training budget."""

    name: str
    data: tuple[str, ...] = ("mnist",)
    depth: tuple[int, ...] = (2, 4)
    width: tuple[int, ...] = (16, 32)
    kernel: tuple[int, ...] = (3,)
    act: tuple[str, ...] = ("relu",)
    lr: tuple[float, ...] = (2e-3,)
    branch_scale: tuple[float, ...] = (1.0,)
    seed: tuple[int, ...] = (0,)
    layouts: tuple[str, ...] = LAYOUTS
    epochs: int = 3  # with patience, the cap
    train_subset: int = 6000  # training examples per trial (0 = the whole split)
    subsets: tuple[int, ...] = ()  # an axis of training-subset sizes, in place of train_subset (spans Q)
    steps: int = 0  # with subsets: each trial's epoch cap is this many optimiser steps (0: ``epochs`` for all)
    patience_steps: int = 0  # with subsets: patience in optimiser steps, as epochs of each subset (0: ``patience``)
    val_subset: int = 5000  # validation examples (0 = the whole test split)
    batch_size: int = 64
    opt: str = "adamw"
    weight_decay: float = 0.0
    sched: str = "cosine"
    patience: int = 0  # stop a trial after this many epochs without a better watched score (0: train every epoch)
    patience_on: str = "train_loss"  # the watched score: "train_loss" (convergence) or "val"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def configurations(self, data: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
        """``{trial key: config}`` for every dataset, combination of the axes (and subset size), and layout."""
        out: dict[str, dict[str, Any]] = {}
        for dataset in data or self.data:
            for subset in self.subsets or (None,):
                for values in itertools.product(*(getattr(self, axis) for axis in AXES)):
                    base = {"data": dataset, **dict(zip(AXES, values))}
                    for layout in self.layouts:
                        config = {**base, "layout": layout, **self.training()}
                        if subset is not None:
                            config["train_subset"] = subset
                            per_epoch = math.ceil(subset / self.batch_size)  # optimiser steps an epoch
                            if self.steps:
                                config["epochs"] = math.ceil(self.steps / per_epoch)
                            if self.patience_steps:
                                config["patience"] = math.ceil(self.patience_steps / per_epoch)
                        out[trial_key(config)] = config
        return out

    def training(self) -> dict[str, Any]:
        """The training settings shared by every trial (the later ones only where they are not the defaults, so
        that studies stored before them still resume)."""
        keys = ("epochs", "train_subset", "val_subset", "batch_size", "opt", "weight_decay")
        out = {k: getattr(self, k) for k in keys}
        for key, default in LATER_DEFAULTS.items():
            if getattr(self, key) != default:
                out[key] = list(getattr(self, key)) if isinstance(default, tuple) else getattr(self, key)
        if self.steps and self.subsets:
            del out["epochs"], out["train_subset"]  # each subset's own, from ``steps``, in its configurations
        if self.patience_steps and self.subsets:
            out.pop("patience", None)
        return out

    def size(self, data: tuple[str, ...] | None = None) -> int:
        combos = max(len(self.subsets), 1)
        for axis in AXES:
            combos *= len(getattr(self, axis))
        return combos * len(self.layouts) * len(data or self.data)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k != "extra"}


LATER_DEFAULTS: dict[str, Any] = {"subsets": (), "steps": 0, "patience_steps": 0, "sched": "cosine", "patience": 0,
                                  "patience_on": "train_loss"}  # fmt: skip


def trial_key(config: dict[str, Any]) -> str:
    """A readable, unique name for one trial, e.g. ``mnist-d4-w32-k3-relu-lr0.002-a1-s0-parallel``; a grid with a
    subset axis adds the training examples, e.g. ``-n500``."""
    subset = f"-n{config['train_subset']}" if config.get("subsets") else ""
    return (
        f"{config['data']}-d{config['depth']}-w{config['width']}-k{config['kernel']}-{config['act']}"
        f"-lr{config['lr']:g}-a{config['branch_scale']:g}-s{config['seed']}{subset}-{config['layout']}"
    )


def pair_key(config: dict[str, Any]) -> str:
    """The trial key without the layout: the configuration both layouts share."""
    return trial_key({**config, "layout": ""}).rstrip("-")


GRIDS: dict[str, StudyGrid] = {
    # about 5 minutes on 2 CPU cores: 32 trials on 6,000 MNIST images, Q from ~0.5 to ~40
    "small": StudyGrid(
        "small", data=("mnist",), depth=(2, 6), width=(8, 16, 32, 48), seed=(0, 1), epochs=5, train_subset=6000
    ),
    # 288 trials on MNIST and CIFAR-10, about 40 minutes on 2 CPU cores
    "medium": StudyGrid(
        "medium",
        data=("mnist", "cifar10"),
        depth=(2, 4, 8),
        width=(8, 16, 32),
        kernel=(3, 5),
        act=("relu", "tanh"),
        seed=(0, 1),
        epochs=4,
        train_subset=5000,
    ),
    # trained to convergence on MNIST subsets of 500, 2,000 and 8,000 images, so that small networks span Q from
    # 0.13 to 15 and reach the paper's training losses at Q < 1: up to 4,000 steps (500, 125 and 32 epochs), cosine,
    # stopped earlier when the training loss has not fallen by 1 % in 800 steps (100, 25 and 7 epochs)
    "convergence": StudyGrid(
        "convergence",
        data=("mnist",),
        depth=(2, 4),
        width=(16, 32),
        seed=(0, 1),
        subsets=(500, 2000, 8000),
        steps=4000,
        patience_steps=800,
        patience_on="train_loss",
        val_subset=1000,
    ),
    # 6,912 configurations, each trained in both layouts, on the full training splits
    "paper": StudyGrid(
        "paper",
        data=("mnist", "cifar10"),
        depth=(2, 3, 4, 6, 8, 12),
        width=(8, 16, 32, 64),
        kernel=(3, 5, 7),
        act=("relu", "tanh", "gelu", "sigmoid"),
        lr=(3e-4, 1e-3, 3e-3),
        branch_scale=(1.0, 0.5),
        seed=(0, 1),
        epochs=20,
        train_subset=0,
        val_subset=0,
    ),
}


def load_grid(grid: str | Path) -> StudyGrid:
    """A named grid (small, medium, paper) or a YAML file with the fields of :class:`StudyGrid`."""
    if str(grid) in GRIDS:
        return GRIDS[str(grid)]
    path = Path(grid)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        raise InvalidValueError(f"grid {str(grid)!r} is not known; use one of {', '.join(GRIDS)} or a YAML file")
    values = load_yaml(path) or {}
    known = {f.name for f in fields(StudyGrid)} - {"extra"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidValueError(
            f"unknown grid field(s) {', '.join(unknown)} in {path}; known fields: {', '.join(sorted(known))}"
        )
    for axis in (*AXES, "data", "layouts"):
        if axis in values:
            items = values[axis] if isinstance(values[axis], list) else [values[axis]]
            values[axis] = tuple(_typed(path, axis, item, _AXIS_TYPES.get(axis, str)) for item in items)
    for name in ("epochs", "train_subset", "val_subset", "batch_size", "patience", "steps", "patience_steps"):
        if name in values:
            values[name] = _typed(path, name, values[name], int)
    if "subsets" in values:
        items = values["subsets"] if isinstance(values["subsets"], list) else [values["subsets"]]
        values["subsets"] = tuple(_typed(path, "subsets", item, int) for item in items)
    if "weight_decay" in values:
        values["weight_decay"] = _typed(path, "weight_decay", values["weight_decay"], float)
    return StudyGrid(**{"name": path.stem, **values})


_AXIS_TYPES: dict[str, type] = {"depth": int, "width": int, "kernel": int, "seed": int, "lr": float,
                                "branch_scale": float}  # fmt: skip


def _typed(path: Path, field_name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (YAML reads ``1e-3`` as text), or an error naming the field."""
    try:
        if kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
            raise ValueError
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError) as err:
        raise InvalidValueError(f"{path}: {field_name} value {value!r} is not allowed; use a {kind.__name__}") from err
