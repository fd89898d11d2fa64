"""What the engine needs from a task: its settings, data, training loss, evaluation and inference.

A task is the only place that knows what a batch means. The engine calls these
methods and nothing else, so a new task (detection, super-resolution, ...) plugs in
without changes to the engine: write a folder under ``tasks/`` with a class that
follows :class:`Task`, and add it to :data:`convforge.tasks.TASKS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from convforge.registry import ModelInfo
    from convforge.runs.loading import TrainedModel


@dataclass
class TaskSettings:
    """The recipe fields that belong to one task (a subclass per task adds its own, with their checks)."""

    def validate(self, epochs: int) -> None:
        """Reject a bad value, naming the field, the value and what is allowed (``epochs``: the run's length)."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskData:
    """Training and validation batches, plus what the model must match."""

    train: Any  # an iterable of batches with set_epoch(epoch), len() and num_examples
    val: Iterable
    model_kwargs: dict[str, Any]  # e.g. num_classes and in_chans for create_model
    input_size: tuple[int, ...]  # per-sample input shape, for profiling
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Predictions:
    """What a task's model made of some image files: one result per file, a table for people, files written."""

    results: dict[str, Any]
    table: str
    files: list[Path] = field(default_factory=list)


def output_names(paths: list[str], suffix: str) -> dict[str, str]:
    """A distinct output file name per input path: its stem plus ``suffix``, numbered when stems repeat."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for path in paths:
        stem, n = Path(path).stem, 1
        name = f"{stem}{suffix}"
        while name in taken:
            n += 1
            name = f"{stem}-{n}{suffix}"
        taken.add(name)
        names[path] = name
    return names


def first_examples(batches: Iterable[torch.Tensor], count: int) -> Iterator[torch.Tensor]:
    """The batches of ``batches`` up to ``count`` examples in all (the last one cut to fit)."""
    left = count
    for batch in batches:
        if left <= 0:
            break
        yield batch[:left]
        left -= len(batch[:left])


class Task(Protocol):
    """The interface between the engine and one kind of problem."""

    name: ClassVar[str]  # the task's one name: --task, registry metadata, and the folder runs/<name>/...
    primary_metric: ClassVar[str]  # the validation metric that picks the best checkpoint (higher is better)
    default_data: ClassVar[str]  # the dataset a recipe uses when it names none
    settings_class: ClassVar[type[TaskSettings]]  # the task's own recipe fields
    any_input_size: ClassVar[bool]  # whether its models take inputs of any height and width (exported so)
    # optional: trunk_tasks, the other tasks whose models it also trains (sdr trains classifiers with d outputs)

    def recipe_defaults(self, info: ModelInfo) -> dict[str, Any]:
        """Recipe fields a registered model implies for this task (a detector's input side, say)."""
        ...

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        """Load the recipe's data and wrap it in batch iterators."""
        ...

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """The batches to score a trained model on: those of ``data``, or by default the data the recipe
        validates on."""
        ...

    def calibration_inputs(self, recipe: Any, count: int, seed: int = 0) -> Iterator[torch.Tensor]:
        """Batches of model inputs, ``count`` examples in all, drawn from the training data with ``seed`` and
        prepared as for evaluation (no augmentation): what post-training quantisation calibrates on."""
        ...

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        """The loss to minimise on one batch, and the number of examples in it."""
        ...

    def evaluate(self, model: nn.Module, batches: Iterable, device: torch.device) -> dict[str, float]:
        """Sums over all batches (the engine adds them up across ranks)."""
        ...

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        """Metrics (``loss`` and the task's scores) from the summed values."""
        ...

    def model_input(self, image: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
        """One uint8 C×H×W image as the batch of one the model takes, prepared as its run recorded
        (``config``: the run's config: input size, normalisation, ...)."""
        ...

    def predict(self, trained: TrainedModel, image: torch.Tensor, **options: Any) -> Any:
        """The trained model's answer for one uint8 C×H×W image (classes, boxes, an enlarged image...)."""
        ...

    def predict_files(self, trained: TrainedModel, paths: list[Path], out: Path | None = None,
                      overwrite: bool = False, **options: Any) -> Predictions:  # fmt: skip
        """Predict every image file; write what the task draws or makes into ``out``, replacing an existing file
        there only with ``overwrite``."""
        ...
