"""``convforge.predict``: a trained model's answer for image files, whatever its task.

The run records its task; the task prepares each image as the model was trained on it,
and says what the answer is (classes, boxes, an enlarged image) and what it writes.
"""

from __future__ import annotations

import glob
import inspect
from pathlib import Path
from typing import Any

from convforge.data.image_file import IMAGE_SUFFIXES, read_image
from convforge.engine.device_choice import resolve_device
from convforge.errors import ConvforgeError
from convforge.runs.loading import TrainedModel, trained_model
from convforge.tasks import Predictions, Task, get_task


def _task_of(trained: TrainedModel, options: dict[str, Any], method: str) -> Task:
    """The run's task, after checking that it takes ``options``."""
    task = get_task(trained.task)
    fixed = ("trained", "image", "paths", "out", "overwrite")  # what every task's prediction takes
    allowed = [n for n in inspect.signature(getattr(task, method)).parameters if n not in fixed]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        shown = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in allowed)
        takes = f"takes the options {shown}" if allowed else "takes no options"
        raise ConvforgeError(f"{trained.checkpoint} is a model of the {trained.task} task, whose prediction {takes}; "
                             f"got {', '.join(unknown)}")  # fmt: skip
    return task


def image_files(sources: list[str | Path]) -> list[Path]:
    """The image files ``sources`` name: files as given, a folder's images (sorted, not recursive), and the
    matches of a glob pattern (``'photos/**/*.jpg'``); a source that names none is refused."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ConvforgeError(f"the folder {path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif not path.exists() and glob.has_magic(str(source)):
            found = sorted(Path(p) for p in glob.glob(str(source), recursive=True) if Path(p).is_file())
            if not found:
                raise ConvforgeError(f"the pattern {source!r} matches no file")
            files += found
        else:
            files.append(path)  # read_image names a missing or unreadable file
    unique: dict[Path, Path] = {}  # a file named twice (also through a folder or a pattern) is predicted once
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _on_device(trained: TrainedModel, device: str | None) -> TrainedModel:
    if device is not None:
        trained.model.to(resolve_device(device))
    return trained


def predict(checkpoint: str | Path | TrainedModel, image: str | Path, device: str | None = None,
            **options: Any) -> Any:  # fmt: skip
    """What a trained run (or checkpoint) makes of the image file ``image``, on ``device`` (default: the CPU).

    A classifier gives its most probable classes with probabilities (``top_k=5``), a
    detector its objects (``conf``, ``iou``, ``max_det``), a super-resolution model the
    enlarged image (float 0–1, C×H×W).
    """
    trained = _on_device(trained_model(checkpoint), device)
    return _task_of(trained, options, "predict").predict(trained, read_image(image), **options)


def predict_files(checkpoint: str | Path | TrainedModel, images: list[str | Path], out: str | Path | None = None,
                  overwrite: bool = False, device: str | None = None, **options: Any) -> Predictions:  # fmt: skip
    """Predict every image file; what the task draws or makes is written into ``out`` (its default: a fresh
    ``predict``, ``predict-2``, ... folder in the run, for tasks that write images). A file already there is
    replaced only with ``overwrite``; images with the same name get numbered outputs. ``images`` may name
    folders (their images) and glob patterns; ``device`` runs the model there (default: the CPU)."""
    if not images:
        raise ConvforgeError("name at least one image file to predict")
    files = image_files(list(images))
    trained = _on_device(trained_model(checkpoint), device)
    task = _task_of(trained, options, "predict_files")
    return task.predict_files(trained, files, Path(out) if out is not None else None, overwrite=overwrite, **options)
