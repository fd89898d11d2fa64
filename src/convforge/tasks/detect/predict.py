"""Detection inference: the objects a trained detector finds in an image, drawn and listed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from convforge.atomic import write_atomic, write_json_atomic
from convforge.data.image_file import read_image
from convforge.data.letterbox import LetterboxGeometry, letterbox, to_rgb
from convforge.errors import ConvforgeError
from convforge.field_checks import is_int, is_number
from convforge.runs.loading import TrainedModel, trained_model
from convforge.tables import text_table
from convforge.tasks.base import output_names
from convforge.tasks.detect.boxes import non_max_suppression

TASK = "detect"
DETECTIONS_FILE = "detections.json"


@dataclass
class Detection:
    """One object: its box (x1, y1, x2, y2 in pixels of the original image), score (0–1) and class."""

    box: tuple[float, float, float, float]
    score: float
    class_index: int
    class_name: str


def letterboxed_input(image: torch.Tensor, size: int) -> tuple[torch.Tensor, LetterboxGeometry]:
    """A uint8 C×H×W image letterboxed to ``size``² as a 0–1 batch of one, with the geometry to map boxes back."""
    canvas, geometry = letterbox(image, size)
    return canvas[None].float().div(255), geometry


def _check_options(conf: float, iou: float, max_det: int) -> None:
    for name, value in (("conf", conf), ("iou", iou)):
        if not is_number(value) or not 0 <= value <= 1:
            raise ConvforgeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not is_int(max_det) or max_det < 1:
        raise ConvforgeError(f"max_det must be a positive integer, got {max_det!r}")


@torch.no_grad()
def detect_in_image(trained: TrainedModel, image: torch.Tensor, conf: float = 0.25, iou: float = 0.7,
                    max_det: int = 300) -> list[Detection]:  # fmt: skip
    """The objects a trained detector finds in a uint8 C×H×W image, best first: scores above ``conf``, NMS at
    ``iou``, at most ``max_det``."""
    _check_options(conf, iou, max_det)
    names = trained.config.get("classes") or []
    batch, geometry = letterboxed_input(image, int(trained.config["recipe"]["image_size"]))
    model = trained.model.eval()
    device = next(model.parameters()).device
    output = model(batch.to(device)).float().cpu()
    found = non_max_suppression(output, conf, iou, max_det)[0]
    boxes = geometry.to_original(found[:, :4])
    return [
        Detection(
            tuple(round(v, 2) for v in box.tolist()),
            round(float(score), 4),
            int(label),
            names[int(label)] if int(label) < len(names) else str(int(label)),
        )  # fmt: skip
        for box, score, label in zip(boxes, found[:, 4], found[:, 5])
    ]


def detect(checkpoint: str | Path | TrainedModel, image: str | Path, conf: float = 0.25, iou: float = 0.7,
           max_det: int = 300) -> list[Detection]:  # fmt: skip
    """The objects a trained detector (a run directory or checkpoint) finds in the image file ``image``."""
    return detect_in_image(trained_model(checkpoint, TASK), read_image(image), conf, iou, max_det)


def draw_detections(image: torch.Tensor, detections: list[Detection], width: int = 2) -> torch.Tensor:
    """The image (uint8 C×H×W) with each detection's box and "class score" label drawn on it, one colour per class."""
    from torchvision.utils import draw_bounding_boxes

    image = to_rgb(image)
    if not detections:
        return image
    boxes = torch.tensor([d.box for d in detections], dtype=torch.float32)
    labels = [f"{d.class_name} {d.score:.2f}" for d in detections]
    palette = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990",
               "#9a6324", "#800000", "#808000", "#000075", "#ffe119"]  # fmt: skip
    colors = [palette[d.class_index % len(palette)] for d in detections]
    return draw_bounding_boxes(image, boxes, labels, colors=colors, width=width)


def write_detections(results: dict[str, list[Detection]], out: Path) -> list[Path]:
    """``<out>/<name>.png`` per image with its boxes drawn, and ``<out>/detections.json``; returns the files."""
    from torchvision.io import write_png

    files = []
    for path, name in output_names(list(results), ".png").items():
        drawn = draw_detections(read_image(path), results[path])
        files.append(write_atomic(out / name, lambda tmp, drawn=drawn: write_png(drawn, str(tmp))))
    files.append(write_json_atomic(out / DETECTIONS_FILE, {k: [asdict(d) for d in v] for k, v in results.items()}))
    return files


def detections_table(results: dict[str, list[Any]]) -> str:
    """One line per detection: image, class, score and box."""
    rows = [(path, d.class_name, f"{d.score:.3f}", ", ".join(f"{v:.1f}" for v in d.box))
            for path, found in results.items() for d in found]  # fmt: skip
    if not rows:
        return "no objects above the score threshold"
    return text_table(["image", "class", "score", "box x1, y1, x2, y2"], rows, align="llrl")
