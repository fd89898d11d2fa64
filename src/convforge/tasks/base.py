"""What the engine needs from a task: its data, its training loss and its evaluation.

A task is the only place that knows what a batch means. The engine calls these
methods and nothing else, so a new task (detection, super-resolution) plugs in
without changes to the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


@dataclass
class TaskData:
    """Training and validation batches, plus what the model must match."""

    train: Any  # an iterable of batches with set_epoch(epoch), len() and num_examples
    val: Iterable
    model_kwargs: dict[str, Any]  # e.g. num_classes and in_chans for create_model
    input_size: tuple[int, ...]  # per-sample input shape, for profiling
    info: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """The interface between the engine and one kind of problem."""

    name: str  # the folder under the project: runs/<name>/...
    primary_metric: str  # the validation metric that picks the best checkpoint (higher is better)

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        """Load the recipe's data and wrap it in batch iterators."""
        ...

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """The batches to score a trained model on: those of ``data``, or by default the data the recipe
        validates on."""
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
