"""What a detector gets right and wrong on its validation images, as Ultralytics shows it after validation.

- ``pr_curve.png``: precision against recall at IoU 0.5, one thin line per class and the mean,
  read off the same 101-point curves COCO's mAP50 averages;
- ``confusion_matrix.png``: detections above score 0.25 matched to ground truth at IoU 0.45
  (Ultralytics' defaults), with a background row and column for misses and false alarms;
- ``predictions.jpg``: a mosaic of the first 16 images with their detections drawn;
- a per-class table: instances, AP50 and AP50-95.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from convforge.atomic import write_atomic
from convforge.data.image_file import read_image
from convforge.data.letterbox import letterbox
from convforge.figures import pyplot, save_figure
from convforge.tables import text_table
from convforge.tasks.classify.confusion import plot_confusion
from convforge.tasks.detect.boxes import original_detections
from convforge.tasks.detect.coco_map import RECALL_POINTS, MeanAveragePrecision, box_iou
from convforge.tasks.detect.predict import Detection, draw_detections

MATRIX_CONF, MATRIX_IOU = 0.25, 0.45  # Ultralytics' confusion-matrix thresholds
MOSAIC_IMAGES, MOSAIC_TILE = 16, 320


def _matrix_add(matrix: np.ndarray, gt_boxes: np.ndarray, gt_classes: np.ndarray, boxes: np.ndarray,
                classes: np.ndarray) -> None:  # fmt: skip
    """Match detections to ground truth greedily by IoU (at least MATRIX_IOU, any class); the last row and column
    are the background: a missed object, a false alarm."""
    background = matrix.shape[0] - 1
    ious = box_iou(gt_boxes, boxes)
    pairs = sorted(((ious[g, d], g, d) for g in range(len(gt_boxes)) for d in range(len(boxes))
                    if ious[g, d] >= MATRIX_IOU), reverse=True)  # fmt: skip
    used_gt, used_det = set(), set()
    for _, g, d in pairs:
        if g not in used_gt and d not in used_det:
            used_gt.add(g)
            used_det.add(d)
            matrix[gt_classes[g], classes[d]] += 1
    for g in set(range(len(gt_boxes))) - used_gt:
        matrix[gt_classes[g], background] += 1
    for d in set(range(len(boxes))) - used_det:
        matrix[background, classes[d]] += 1


@torch.no_grad()
def validation_plots(model: nn.Module, batches: Iterable, device: torch.device, names: list[str], out: Path,
                     title: str = "", nms: tuple[float, float, int] = (0.001, 0.7, 300),
                     ) -> tuple[str, list[Path]]:  # fmt: skip
    """Score every image of ``batches`` and write the PR curve, the confusion matrix and the prediction mosaic into
    ``out``; returns the per-class table and the files."""
    metric = MeanAveragePrecision()
    count = len(names)
    matrix = np.zeros((count + 1, count + 1), dtype=np.int64)
    shown: list[tuple[str, list[Detection]]] = []
    for batch in batches:
        output = model(batch.images.to(device)).float()
        found = original_detections(output, batch.geometry, *nms)
        for (found_boxes, found_scores, found_classes), gt_boxes, gt_classes, file in zip(
            found, batch.gt_boxes, batch.gt_classes, batch.files
        ):
            boxes, scores, classes = found_boxes.numpy(), found_scores.numpy(), found_classes.numpy().astype(np.int64)
            metric.add(gt_boxes, gt_classes, boxes, scores, classes)
            keep = (scores >= MATRIX_CONF) & (classes < count)
            truth = np.asarray(gt_classes, dtype=np.int64)
            valid = truth < count
            _matrix_add(matrix, np.asarray(gt_boxes, dtype=np.float64)[valid], truth[valid], boxes[keep],
                        classes[keep])  # fmt: skip
            if len(shown) < MOSAIC_IMAGES:
                shown.append((file, [Detection(tuple(map(float, b)), float(s), int(c), names[int(c)])
                                     for b, s, c in zip(boxes[keep], scores[keep], classes[keep])]))  # fmt: skip
    curves = metric.precision_curves()
    labels = [*names, "background"]
    files = [
        _plot_pr(curves, names, out / "pr_curve.png", title),
        plot_confusion(torch.from_numpy(matrix), labels, out / "confusion_matrix.png", title, totals=False),
        _mosaic(shown, out / "predictions.jpg"),
    ]
    instances = np.bincount(np.concatenate([image.gt_classes for image in metric.images] or [np.zeros(0, int)]),
                            minlength=count)  # fmt: skip
    rows = [(names[c], f"{int(instances[c]):,}", f"{curve[0].mean():.3f}", f"{curve.mean():.3f}")
            for c, curve in sorted(curves.items())]  # fmt: skip
    return text_table(["class", "instances", "AP50", "AP50-95"], rows, align="lrrr"), files


def _plot_pr(curves: dict[int, np.ndarray], names: list[str], path: Path, title: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    for c, curve in curves.items():
        ax.plot(RECALL_POINTS, curve[0], color="grey", linewidth=0.6, alpha=0.6,
                label=f"{names[c]} {curve[0].mean():.3f}" if len(curves) <= 12 else None)  # fmt: skip
    if curves:
        mean = np.mean([curve[0] for curve in curves.values()], axis=0)
        ax.plot(RECALL_POINTS, mean, color="C0", linewidth=2.5, label=f"all classes mAP50 {mean.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"{title + ': ' if title else ''}precision-recall at IoU 0.5")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def _mosaic(shown: list[tuple[str, list[Detection]]], path: Path) -> Path:
    """The images with their detections, each letterboxed to a square tile, four to a row."""
    from torchvision.io import write_jpeg
    from torchvision.utils import make_grid

    tiles = []
    for file, detections in shown:
        image = read_image(file)
        drawn = draw_detections(image, detections, width=max(2, max(image.shape[-2:]) // 160))  # visible when shrunk
        tiles.append(letterbox(drawn, MOSAIC_TILE)[0])
    grid = make_grid(tiles or [torch.zeros(3, MOSAIC_TILE, MOSAIC_TILE, dtype=torch.uint8)], nrow=4, padding=4)
    return write_atomic(path, lambda tmp: write_jpeg(grid, str(tmp), quality=90))
