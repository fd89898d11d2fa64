"""``convforge.predict``: a trained model's answer for image files, whatever its task.

The run records its task; the task prepares each image as the model was trained on it,
and says what the answer is (classes, boxes, an enlarged image) and what it writes.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from convforge.data.image_file import read_image
from convforge.errors import ConvforgeError
from convforge.runs.loading import TrainedModel, trained_model
from convforge.tasks import Predictions, Task, get_task


def _task_of(trained: TrainedModel, options: dict[str, Any], method: str) -> Task:
    """The run's task, after checking that it takes ``options``."""
    task = get_task(trained.task)
    allowed = [n for n in inspect.signature(getattr(task, method)).parameters if n not in ("trained", "image",
                                                                                           "paths", "out")]  # fmt: skip
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        shown = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in allowed)
        takes = f"takes the options {shown}" if allowed else "takes no options"
        raise ConvforgeError(f"{trained.checkpoint} is a model of the {trained.task} task, whose prediction {takes}; "
                             f"got {', '.join(unknown)}")  # fmt: skip
    return task


def predict(checkpoint: str | Path | TrainedModel, image: str | Path, **options: Any) -> Any:
    """What a trained run (or checkpoint) makes of the image file ``image``.

    A classifier gives its most probable classes with probabilities (``top_k=5``), a
    detector its objects (``conf``, ``iou``, ``max_det``), a super-resolution model the
    enlarged image (float 0–1, C×H×W).
    """
    trained = trained_model(checkpoint)
    return _task_of(trained, options, "predict").predict(trained, read_image(image), **options)


def predict_files(checkpoint: str | Path | TrainedModel, images: list[str | Path], out: str | Path | None = None,
                  overwrite: bool = False, **options: Any) -> Predictions:  # fmt: skip
    """Predict every image file; what the task draws or makes is written into ``out`` (its default: a fresh
    ``predict``, ``predict-2``, ... folder in the run, for tasks that write images). A file already there is
    replaced only with ``overwrite``; images with the same name get numbered outputs."""
    if not images:
        raise ConvforgeError("name at least one image file to predict")
    trained = trained_model(checkpoint)
    task = _task_of(trained, options, "predict_files")
    return task.predict_files(
        trained, [Path(p) for p in images], Path(out) if out is not None else None, overwrite=overwrite, **options
    )
