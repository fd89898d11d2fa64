"""Tasks: what a batch means, how to compute a loss and how to score a model."""

from __future__ import annotations

from convforge.errors import InvalidValueError
from convforge.tasks.base import Task, TaskData
from convforge.tasks.classification import ClassificationTask
from convforge.tasks.detection import DetectionTask
from convforge.tasks.super_resolution import SuperResolutionTask

TASKS = {"classify": ClassificationTask, "sr": SuperResolutionTask, "detect": DetectionTask}


def get_task(name: str) -> Task:
    """The task registered under ``name``."""
    if name not in TASKS:
        raise InvalidValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = ["TASKS", "ClassificationTask", "DetectionTask", "SuperResolutionTask", "Task", "TaskData", "get_task"]
