"""Training recipes: every knob of a run, validated before any work starts.

A recipe is built from defaults, then a YAML file, then keyword overrides (the
command line), and is written in full to the run's ``config.yaml``. The fields every
task shares live here; each task adds its own (:attr:`Task.settings_class`), held in
:attr:`Recipe.task_settings`. Files and overrides name both kinds flat
(``epochs: 10``, ``scale: 4``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from convforge.engine.device_choice import check_device_name
from convforge.errors import InvalidValueError
from convforge.field_checks import check_bools, check_ints, check_numbers, check_path_component, rejected
from convforge.mapping_file import read_mapping
from convforge.tasks import DEFAULT_TASK, TASKS, TaskSettings

OPTIMIZERS = ("sgd", "adamw", "adadelta")
SCHEDULES = ("cosine", "step", "onecycle", "constant")
PATIENCE_ON = ("val", "train_loss")
TRAIN_LOSS_MIN_GAIN = 0.01  # with patience_on="train_loss", a fall of under 1 % does not count as an improvement
DEFAULT_LR = {"sgd": 0.05, "adamw": 2e-3, "adadelta": 0.1}


def _check_recipe_project(source: str | Path, project: Any) -> None:
    """A recipe file passed around may name a project folder only below the one convforge runs in: a relative path
    without ``..``. Another place is the user's own choice, with ``--project``."""
    path = Path(str(project))
    if not isinstance(project, str) or not project or path.is_absolute() or ".." in path.parts:
        raise InvalidValueError(f"the recipe {source} sets project = {project!r}; a recipe file may name only a "
                                "folder below the current one (e.g. runs/cifar), without '..': pass --project to "
                                "write elsewhere")  # fmt: skip


@dataclass
class Recipe:
    """How to train: data, optimisation, regularisation, speed and bookkeeping, plus the task's own settings."""

    # data
    data: str | None = None  # None = the task's default dataset
    data_root: str | None = None
    train_subset: int = 0  # 0 = every training example
    val_subset: int = 0  # 0 = the whole test split
    # optimisation
    epochs: int = 10
    patience: int = 0  # stop when the watched score has not improved for this many epochs; 0 = never
    patience_on: str = "val"  # the watched score: "val" (the task's primary metric) or "train_loss" (convergence)
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
    ema_decay: float = 0.0  # 0 = no EMA of weights
    grad_clip: float = 0.0  # 0 = no clipping (max global L2 norm otherwise)
    # distillation (used when a teacher is given)
    kd_alpha: float = 0.5  # weight of the distillation loss; the task's own loss gets 1 - kd_alpha
    kd_temperature: float = 4.0  # softens both classifiers' logits in Hinton's loss
    # speed
    channels_last: bool | None = None  # None = on for conv models on CPU
    amp: bool | None = None  # None = on with CUDA
    compile: bool = False
    device: str = "auto"
    # bookkeeping
    seed: int = 0
    task: str = DEFAULT_TASK
    project: str = "runs"
    name: str | None = None
    tensorboard: bool = False  # also log every epoch's figures for TensorBoard, in <run>/tensorboard
    # the task's own fields (scale, image_size, box_gain, ...)
    task_settings: TaskSettings = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.task in TASKS:
            task = TASKS[self.task]
            if self.task_settings is None:
                self.task_settings = task.settings_class()
            if self.data is None:
                self.data = task.default_data

    @staticmethod
    def shared_fields() -> tuple[str, ...]:
        """The fields every task has."""
        return tuple(f.name for f in fields(Recipe) if f.name != "task_settings")

    @classmethod
    def field_names(cls, task: str = DEFAULT_TASK) -> tuple[str, ...]:
        """Every field a recipe of ``task`` takes: the shared ones, then the task's own."""
        return cls.shared_fields() + (TASKS[task].settings_class.field_names() if task in TASKS else ())

    @classmethod
    def from_sources(cls, yaml_file: str | Path | None = None, defaults: dict[str, Any] | None = None,
                     **overrides: Any) -> Recipe:  # fmt: skip
        """The field defaults, then ``defaults`` (e.g. what the model implies), then a YAML recipe file, then
        ``overrides`` (None values are ignored)."""
        values: dict[str, Any] = {}
        if yaml_file is not None:
            values.update(read_mapping(yaml_file, "recipe", InvalidValueError))
            if overrides.get("project") is None and "project" in values:
                _check_recipe_project(yaml_file, values["project"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        defaults = dict(defaults or {})
        task = values.get("task", defaults.get("task", DEFAULT_TASK))
        known = set(cls.field_names(task))  # a model's defaults for its own task do not bind another task
        return cls.from_values({**{k: v for k, v in defaults.items() if k in known}, **values})

    @classmethod
    def stored_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A run's stored recipe without the fields its task does not take (runs of earlier versions stored every
        task's fields)."""
        known = set(cls.field_names(values.get("task", DEFAULT_TASK)))
        return {k: v for k, v in values.items() if k in known}

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Recipe:
        """A validated recipe from flat ``{field: value}``; a field no task knows, or one of another task, is
        refused by name."""
        values = dict(values)
        task_name = values.get("task", DEFAULT_TASK)
        if task_name not in TASKS:
            raise rejected("task", task_name, f"use one of {', '.join(TASKS)}")
        task = TASKS[task_name]
        own = set(task.settings_class.field_names())
        shared = set(cls.shared_fields())
        others: dict[str, list[str]] = {}
        for other_name, other in TASKS.items():
            for name in other.settings_class.field_names() if other_name != task_name else ():
                others.setdefault(name, []).append(other_name)
        misplaced = sorted((set(values) - shared - own) & set(others))
        if misplaced:
            where = ", ".join(f"{name} ({', '.join(others[name])})" for name in misplaced)
            raise InvalidValueError(f"recipe field(s) {where} belong to another task, not {task_name}; "
                                    f"{task_name}'s own fields: {', '.join(sorted(own)) or 'none'}")  # fmt: skip
        unknown = sorted(set(values) - shared - own)
        if unknown:
            raise InvalidValueError(
                f"unknown recipe field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(shared | own))}"
            )
        settings = task.settings_class(**{k: v for k, v in values.items() if k in own})
        recipe = cls(**{k: v for k, v in values.items() if k in shared}, task_settings=settings)
        recipe.validate()
        return recipe

    def with_overrides(self, **overrides: Any) -> Recipe:
        """A validated copy with ``overrides`` (None values ignored). Another ``task`` drops this recipe's task
        settings, and its data when that is the old task's default."""
        given = {k: v for k, v in overrides.items() if v is not None}
        kept = self.to_dict()
        if given.get("task", self.task) != self.task:
            kept = self.shared_values()
            if kept["data"] == TASKS[self.task].default_data:
                del kept["data"]
        return Recipe.from_values({**kept, **given})

    def validate(self) -> None:
        """Reject a bad value, naming the field, the value and what is allowed."""
        if self.task not in TASKS:
            raise rejected("task", self.task, f"use one of {', '.join(TASKS)}")
        check_numbers(self, "lr", "momentum", "weight_decay", "grad_clip", "warmup_epochs", "ema_decay", "gamma",
                      "kd_alpha", "kd_temperature")  # fmt: skip
        if not isinstance(self.milestones, list):
            raise rejected("milestones", self.milestones, "use a list of epochs, e.g. [30, 60]")
        check_bools(self, "compile", "nesterov", "tensorboard")
        if self.opt not in OPTIMIZERS:
            raise rejected("opt", self.opt, f"use one of {', '.join(OPTIMIZERS)}")
        if self.patience_on not in PATIENCE_ON:
            raise rejected("patience_on", self.patience_on, f"use one of {', '.join(PATIENCE_ON)}")
        if self.sched not in SCHEDULES:
            raise rejected("sched", self.sched, f"use one of {', '.join(SCHEDULES)}")
        if not isinstance(self.data, str) or not self.data:
            raise rejected("data", self.data, "name a dataset or a folder")
        if self.name is not None:
            check_path_component("name", self.name)
        check_ints(self, "epochs", "batch_size")
        check_ints(self, "train_subset", "val_subset", "seed", "patience", minimum=0)
        if self.lr is not None and not self.lr > 0:
            raise rejected("lr", self.lr, "use a positive number")
        for name in ("weight_decay", "grad_clip", "warmup_epochs", "momentum"):
            if not getattr(self, name) >= 0:
                raise rejected(name, getattr(self, name), "use a number >= 0")
        if not 0 <= self.ema_decay < 1:
            raise rejected("ema_decay", self.ema_decay, "use 0 (off) or a decay in (0, 1), e.g. 0.999")
        if not 0 <= self.kd_alpha <= 1:
            raise rejected("kd_alpha", self.kd_alpha, "use a weight in [0, 1]")
        if not self.kd_temperature > 0:
            raise rejected("kd_temperature", self.kd_temperature, "use a positive temperature, e.g. 4")
        if self.warmup_epochs >= self.epochs:
            raise rejected("warmup_epochs", self.warmup_epochs, f"use fewer than epochs ({self.epochs})")
        if not 0 < self.gamma <= 1:  # a number, checked above
            raise rejected("gamma", self.gamma, "use a factor in (0, 1]")
        if any(not isinstance(m, int) or not 0 < m < self.epochs for m in self.milestones):
            raise rejected("milestones", self.milestones, f"use epochs between 1 and {self.epochs - 1}")
        check_device_name(self.device)
        self.task_settings.validate(self.epochs)

    @property
    def learning_rate(self) -> float:
        """The peak learning rate: ``lr``, or the optimiser's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.opt]

    def shared_values(self) -> dict[str, Any]:
        """The fields every task has, with their values (lists copied)."""
        return {name: list(v) if isinstance(v := getattr(self, name), list) else v for name in self.shared_fields()}

    def to_dict(self) -> dict[str, Any]:
        """Every field, flat: the shared ones, then the task's own (as ``config.yaml`` holds them)."""
        return {**self.shared_values(), **self.task_settings.to_dict()}
