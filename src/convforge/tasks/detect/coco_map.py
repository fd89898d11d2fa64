"""Mean average precision exactly as the COCO evaluation (pycocotools' ``COCOeval``) computes it for boxes.

- IoU thresholds 0.50:0.05:0.95; area range "all"; at most 100 detections per image
  and class (the highest-scoring).
- In each image and class, detections are matched best score first, each to the
  unmatched ground truth it overlaps most, at least at the threshold.
- Per class, detections of all images are ranked by score; precision is made
  monotone and read at 101 recall points 0:0.01:1; AP is the mean of those values.
- mAP averages the classes that have ground truth.

Boxes are x1, y1, x2, y2 in pixels of the original image. Ties are broken as
pycocotools breaks them (stable sorts, images in increasing id order), so the
figures agree with it to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class ImageResult:
    """One image: its ground truth and detections, as arrays."""

    gt_boxes: np.ndarray  # (G, 4) xyxy
    gt_classes: np.ndarray  # (G,)
    boxes: np.ndarray  # (D, 4) xyxy
    scores: np.ndarray  # (D,)
    classes: np.ndarray  # (D,)


@dataclass
class MeanAveragePrecision:
    """Collects images, then computes COCO's AP figures."""

    max_detections: int = 100
    images: list[ImageResult] = field(default_factory=list)

    def add(self, gt_boxes, gt_classes, boxes, scores, classes) -> None:
        """Add one image; all arguments are array-likes (tensors are converted)."""
        as_array = lambda x, shape: np.asarray(x, dtype=np.float64).reshape(shape)  # noqa: E731
        self.images.append(ImageResult(as_array(gt_boxes, (-1, 4)), as_array(gt_classes, (-1,)).astype(np.int64),
                                       as_array(boxes, (-1, 4)), as_array(scores, (-1,)),
                                       as_array(classes, (-1,)).astype(np.int64)))  # fmt: skip

    def compute(self) -> dict[str, float]:
        """``map50_95``, ``map50`` and ``map75`` in [0, 1] (0 when there is no ground truth), and per-class AP."""
        classes = sorted({int(c) for image in self.images for c in image.gt_classes})
        per_class = {c: self._class_precision(c) for c in classes}
        if not per_class:
            return {"map50_95": 0.0, "map50": 0.0, "map75": 0.0, "per_class": {}}
        precision = np.stack(list(per_class.values()))  # (K, T, R)
        return {
            "map50_95": float(precision.mean()),
            "map50": float(precision[:, 0].mean()),
            "map75": float(precision[:, 5].mean()),
            "per_class": {c: float(p.mean()) for c, p in per_class.items()},
        }

    def precision_curves(self) -> dict[int, np.ndarray]:
        """Per class with ground truth, its interpolated precision (IoU thresholds × 101 recall points), the curves
        whose means are the APs."""
        return {c: self._class_precision(c) for c in sorted({int(c) for i in self.images for c in i.gt_classes})}

    def _class_precision(self, cls: int) -> np.ndarray:
        """Interpolated precision (T thresholds, R recall points) of one class."""
        scores, matched, gt_count = [], [], 0
        for image in self.images:
            gt = image.gt_boxes[image.gt_classes == cls]
            pick = image.classes == cls
            boxes, score = image.boxes[pick], image.scores[pick]
            order = np.argsort(-score, kind="mergesort")[: self.max_detections]
            boxes, score = boxes[order], score[order]
            gt_count += len(gt)
            scores.append(score)
            matched.append(_match(boxes, gt))
        scores_all = np.concatenate(scores)
        matches = np.concatenate(matched, axis=1) if matched else np.zeros((len(IOU_THRESHOLDS), 0), bool)
        order = np.argsort(-scores_all, kind="mergesort")
        tp = np.cumsum(matches[:, order], axis=1, dtype=np.float64)
        fp = np.cumsum(~matches[:, order], axis=1, dtype=np.float64)
        result = np.zeros((len(IOU_THRESHOLDS), len(RECALL_POINTS)))
        for t in range(len(IOU_THRESHOLDS)):
            recall = tp[t] / gt_count
            precision = tp[t] / (tp[t] + fp[t] + np.spacing(1))
            precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
            at = np.searchsorted(recall, RECALL_POINTS, side="left")
            valid = at < len(precision)
            result[t, valid] = precision[at[valid]]
        return result


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes, as COCO computes it (no +1 on sizes)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    wb, hb = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (wa * ha)[:, None] + (wb * hb)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _match(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, D) whether each detection (sorted by score) is a true positive at each IoU threshold."""
    matches = np.zeros((len(IOU_THRESHOLDS), len(boxes)), dtype=bool)
    if not len(boxes) or not len(gt):
        return matches
    ious = box_iou(boxes, gt)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gt), dtype=bool)
        for d in range(len(boxes)):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(len(gt)):
                if taken[g] or ious[d, g] < best_iou:
                    continue
                best, best_iou = g, ious[d, g]
            if best >= 0:
                taken[best] = True
                matches[t, d] = True
    return matches
