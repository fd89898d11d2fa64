"""``convforge.detect``: run a trained detector on image files, and draw what it found."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from convforge.data.image_file import read_image
from convforge.data.letterbox import letterbox, to_rgb
from convforge.engine.loading import TrainedModel, load_trained
from convforge.errors import ConvforgeError
from convforge.tasks.boxes import non_max_suppression


@dataclass
class Detection:
    """One object: its box (x1, y1, x2, y2 in pixels of the original image), score (0–1) and class."""

    box: tuple[float, float, float, float]
    score: float
    class_index: int
    class_name: str


def _trained_detector(checkpoint: str | Path | TrainedModel) -> TrainedModel:
    trained = checkpoint if isinstance(checkpoint, TrainedModel) else load_trained(checkpoint)
    task = trained.config["recipe"]["task"]
    if task != "detect":
        raise ConvforgeError(f"{trained.checkpoint} is a {task} model, not a detector")
    return trained


@torch.no_grad()
def detect(checkpoint: str | Path | TrainedModel, image: str | Path, conf: float = 0.25, iou: float = 0.7,
           max_det: int = 300) -> list[Detection]:  # fmt: skip
    """The objects a trained detector finds in ``image``, best first: scores above ``conf``, NMS at ``iou``."""
    trained = _trained_detector(checkpoint)
    size = int(trained.config["recipe"]["image_size"])
    names = trained.config.get("classes") or []
    canvas, geometry = letterbox(read_image(image), size)
    model = trained.model.eval()
    device = next(model.parameters()).device
    output = model(canvas[None].float().div(255).to(device)).float().cpu()
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


def detect_to_folder(checkpoint: str | Path, images: list[str | Path], out: str | Path, conf: float = 0.25,
                     iou: float = 0.7) -> dict[str, list[Detection]]:  # fmt: skip
    """Detect in every image, writing ``<out>/<name>.png`` with the boxes drawn and ``<out>/detections.json``."""
    from torchvision.io import write_png

    trained = _trained_detector(checkpoint)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for path in images:
        found = detect(trained, path, conf, iou)
        write_png(draw_detections(read_image(path), found), str(out / f"{Path(path).stem}.png"))
        results[str(path)] = found
    (out / "detections.json").write_text(
        json.dumps({k: [asdict(d) for d in v] for k, v in results.items()}, indent=1) + "\n"
    )
    return results
