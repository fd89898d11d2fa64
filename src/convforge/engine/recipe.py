"""Training recipes: every knob of a run, validated before any work starts.

A recipe is built from defaults, then a YAML file, then keyword overrides (the
command line), and is written in full to the run's ``config.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.tasks import TASKS

OPTIMIZERS = ("sgd", "adamw", "adadelta")
SCHEDULES = ("cosine", "step", "onecycle", "constant")
DEFAULT_LR = {"sgd": 0.05, "adamw": 2e-3, "adadelta": 0.1}


@dataclass
class Recipe:
    """How to train: data, optimisation, regularisation, speed and bookkeeping."""

    # data
    data: str = "fashion-mnist"
    data_root: str | None = None
    train_subset: int = 0  # 0 = every training example
    val_subset: int = 0  # 0 = the whole test split
    crop_padding: int = 2
    flip: bool = True
    cutout: int = 0
    image_size: int = 224  # ImageFolder data: training crops and evaluation size
    workers: int = 2  # ImageFolder data: DataLoader worker processes
    # super-resolution data (task sr)
    scale: int = 2
    patch_size: int = 32  # LR pixels a side; HR patches are scale times larger
    patches_per_image: int = 32  # random patches drawn from every training image per epoch
    val_data: str = "set5"
    # detection (task detect): augmentation and loss gains; image_size is the square input side
    zoom: float = 0.5  # random zoom in [1 - zoom, 1 + zoom]
    translate: float = 0.1  # random shift, as a fraction of the image side
    hsv: list[float] = field(default_factory=lambda: [0.015, 0.7, 0.4])  # hue, saturation, value gains
    box_gain: float = 7.5
    cls_gain: float = 0.5
    dfl_gain: float = 1.5
    # optimisation
    epochs: int = 10
    batch_size: int = 128
    opt: str = "sgd"
    lr: float | None = None  # None = the optimiser's default (DEFAULT_LR)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    sched: str = "cosine"
    warmup_epochs: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [])  # for sched=step; default: 50 % and 75 %
    gamma: float = 0.1
    # regularisation and stability
    label_smoothing: float = 0.0
    ema_decay: float = 0.0  # 0 = no EMA of weights
    grad_clip: float = 0.0  # 0 = no clipping (max global L2 norm otherwise)
    # speed
    channels_last: bool | None = None  # None = on for conv models on CPU
    amp: bool | None = None  # None = on with CUDA
    compile: bool = False
    device: str = "auto"
    # bookkeeping
    seed: int = 0
    task: str = "classify"
    project: str = "runs"
    name: str | None = None

    @classmethod
    def from_sources(cls, yaml_file: str | Path | None = None, defaults: dict[str, Any] | None = None,
                     **overrides: Any) -> Recipe:  # fmt: skip
        """The field defaults, then ``defaults`` (e.g. the model's task), then a YAML recipe file, then ``overrides``
        (None values are ignored)."""
        values: dict[str, Any] = dict(defaults or {})
        if yaml_file is not None:
            try:
                loaded = yaml.safe_load(Path(yaml_file).read_text()) or {}
            except (OSError, yaml.YAMLError) as err:
                raise ConvforgeError(f"could not read the recipe {yaml_file}: {err}") from None
            if not isinstance(loaded, dict):
                raise InvalidValueError(f"the recipe {yaml_file} must be a mapping of field: value")
            values.update(loaded)
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidValueError(
                f"unknown recipe field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}"
            )
        recipe = cls(**values)
        recipe.validate()
        return recipe

    def validate(self) -> None:
        """Reject a bad value, naming the field, the value and what is allowed."""

        def bad(name: str, allowed: str) -> None:
            raise InvalidValueError(f"recipe field {name} = {getattr(self, name)!r} is not allowed; {allowed}")

        for name in ("lr", "momentum", "weight_decay", "grad_clip", "warmup_epochs", "label_smoothing", "ema_decay",
                     "gamma", "zoom", "translate", "box_gain", "cls_gain", "dfl_gain"):  # fmt: skip
            value = getattr(self, name)
            if value is None and name == "lr":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                bad(name, "use a finite number")
            if abs(value) > 1e30:
                bad(name, "use a number of sensible size (at most 1e30)")
        if not isinstance(self.milestones, list):
            bad("milestones", "use a list of epochs, e.g. [30, 60]")
        for name in ("flip", "compile"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "use true or false")
        if self.opt not in OPTIMIZERS:
            bad("opt", f"use one of {', '.join(OPTIMIZERS)}")
        if self.sched not in SCHEDULES:
            bad("sched", f"use one of {', '.join(SCHEDULES)}")
        if self.task not in TASKS:
            bad("task", f"use one of {', '.join(TASKS)}")
        if not isinstance(self.scale, int) or isinstance(self.scale, bool) or not 2 <= self.scale <= 8:
            bad("scale", "use an integer from 2 to 8")
        for name in ("epochs", "batch_size", "image_size", "patch_size", "patches_per_image"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "use a positive integer")
        for name in ("train_subset", "val_subset", "crop_padding", "cutout", "seed", "workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                bad(name, "use an integer >= 0")
        if self.lr is not None and not self.lr > 0:
            bad("lr", "use a positive number")
        for name in ("weight_decay", "grad_clip", "warmup_epochs", "momentum"):
            if not getattr(self, name) >= 0:
                bad(name, "use a number >= 0")
        if not 0 <= self.zoom < 1:
            bad("zoom", "use a number in [0, 1)")
        if not 0 <= self.translate <= 0.5:
            bad("translate", "use a fraction in [0, 0.5]")
        for name in ("box_gain", "cls_gain", "dfl_gain"):
            if not getattr(self, name) >= 0:
                bad(name, "use a number >= 0")
        hsv_ok = isinstance(self.hsv, list) and len(self.hsv) == 3
        if not hsv_ok or any(isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 <= g <= 1
                             for g in self.hsv):  # fmt: skip
            bad("hsv", "use three gains in [0, 1] for hue, saturation and value, e.g. [0.015, 0.7, 0.4]")
        if self.task == "detect" and self.image_size % 32:
            bad("image_size", "use a multiple of 32 for detection (the head's coarsest stride)")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", "use a number in [0, 1)")
        if not 0 <= self.ema_decay < 1:
            bad("ema_decay", "use 0 (off) or a decay in (0, 1), e.g. 0.999")
        if self.warmup_epochs >= self.epochs:
            bad("warmup_epochs", f"use fewer than epochs ({self.epochs})")
        if not 0 < self.gamma <= 1:
            bad("gamma", "use a factor in (0, 1]")
        if any(not isinstance(m, int) or not 0 < m < self.epochs for m in self.milestones):
            bad("milestones", f"use epochs between 1 and {self.epochs - 1}")
        if self.device not in ("auto", "cpu") and not str(self.device).startswith("cuda"):
            bad("device", "use auto, cpu or cuda[:N]")

    @property
    def learning_rate(self) -> float:
        """The peak learning rate: ``lr``, or the optimiser's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.opt]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
