"""Tasks: what a batch means, how to compute a loss, how to score a model and how to use it.

Each task has one name, used everywhere: ``--task``, the registry's metadata, and the
run folder ``runs/<task>/<name>``.
"""

from __future__ import annotations

from convforge.errors import InvalidValueError
from convforge.tasks.av_event import AVEventTask
from convforge.tasks.av_parse import AVParseTask
from convforge.tasks.base import Predictions, Task, TaskData, TaskSettings
from convforge.tasks.classify import ClassificationTask
from convforge.tasks.detect import DetectionTask
from convforge.tasks.sdr import SdrTask
from convforge.tasks.sr import SuperResolutionTask

TASKS: dict[str, type[Task]] = {
    task.name: task
    for task in (ClassificationTask, SuperResolutionTask, DetectionTask, AVEventTask, AVParseTask, SdrTask)
}
DEFAULT_TASK = ClassificationTask.name  # what a recipe trains when neither it nor the model names a task


def get_task(name: str) -> Task:
    """A fresh instance of the task registered under ``name``."""
    if name not in TASKS:
        raise InvalidValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = [
    "AVEventTask",
    "AVParseTask",
    "DEFAULT_TASK",
    "TASKS",
    "ClassificationTask",
    "DetectionTask",
    "Predictions",
    "SdrTask",
    "SuperResolutionTask",
    "Task",
    "TaskData",
    "TaskSettings",
    "get_task",
]
