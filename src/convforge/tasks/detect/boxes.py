"""Box arithmetic for detection: format conversions, complete IoU, and non-maximum suppression.

Boxes are ``x1, y1, x2, y2`` (corners, in pixels) unless a name says ``xywh``
(centre, width, height).
"""

from __future__ import annotations

import math

import torch
import torchvision


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) → (x1, y1, x2, y2)."""
    centre, size = boxes[..., :2], boxes[..., 2:4]
    return torch.cat((centre - size / 2, centre + size / 2), -1)


def xyxy_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """(x1, y1, x2, y2) → (cx, cy, w, h)."""
    return torch.cat(((boxes[..., :2] + boxes[..., 2:4]) / 2, boxes[..., 2:4] - boxes[..., :2]), -1)


def complete_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """CIoU of paired boxes ``a[..., 4]`` and ``b[..., 4]`` (same shape), with one trailing value each.

    CIoU = IoU − ρ²/c² − α·v, where ρ is the distance between the centres, c the diagonal
    of the smallest enclosing box, v = 4/π²·(atan(w_b/h_b) − atan(w_a/h_a))² and
    α = v / (v − IoU + 1), taken as a constant for gradients.
    """
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a.unbind(-1), b.unbind(-1)
    aw, ah = ax2 - ax1, ay2 - ay1 + eps
    bw, bh = bx2 - bx1, by2 - by1 + eps
    inter = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp(0) * (
        torch.minimum(ay2, by2) - torch.maximum(ay1, by1)
    ).clamp(0)
    union = aw * ah + bw * bh - inter + eps
    iou = inter / union
    cw = torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1)
    ch = torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
    diagonal = cw**2 + ch**2 + eps
    centre_distance = ((bx1 + bx2 - ax1 - ax2) ** 2 + (by1 + by2 - ay1 - ay2) ** 2) / 4
    v = (4 / math.pi**2) * (torch.atan(bw / bh) - torch.atan(aw / ah)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return (iou - (centre_distance / diagonal + v * alpha)).unsqueeze(-1)


def non_max_suppression(predictions: torch.Tensor, conf: float = 0.25, iou: float = 0.7, max_det: int = 300,
                        multi_label: bool = False, max_candidates: int = 30000) -> list[torch.Tensor]:  # fmt: skip
    """Per-image detections ``(N, 6)``: x1, y1, x2, y2, score, class, best first.

    ``predictions`` is the head's evaluation output ``(B, 4 + nc, A)``. Each box keeps
    its best class, or with ``multi_label`` every class scoring above ``conf`` (as for
    mAP, where a box may count for several classes); detections scoring below ``conf``
    are dropped, and ``torchvision.ops.batched_nms`` removes overlaps above ``iou``
    within each class.
    """
    if not 0 <= conf <= 1 or not 0 < iou <= 1:
        raise ValueError(f"conf must lie in [0, 1] and iou in (0, 1], got conf={conf}, iou={iou}")
    results = []
    for image in predictions.transpose(1, 2):  # (A, 4 + nc)
        boxes, scores = image[:, :4], image[:, 4:]
        if multi_label:
            anchor, label = (scores > conf).nonzero(as_tuple=True)
            boxes, best = boxes[anchor], scores[anchor, label]
        else:
            best, label = scores.max(1)
            keep = best > conf
            boxes, best, label = boxes[keep], best[keep], label[keep]
        if len(best) > max_candidates:
            top = best.topk(max_candidates).indices
            boxes, best, label = boxes[top], best[top], label[top]
        kept = torchvision.ops.batched_nms(boxes.float(), best.float(), label, iou)[:max_det]
        results.append(torch.cat((boxes[kept], best[kept, None], label[kept, None].to(boxes.dtype)), 1))
    return results


def original_detections(predictions: torch.Tensor, geometry: list, conf: float, iou: float,
                        max_det: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:  # fmt: skip
    """Per image, the multi-label NMS detections of a letterboxed batch as validation scores them: boxes mapped
    back to the original image (x1, y1, x2, y2 in its pixels), scores and classes, on the CPU."""
    found = non_max_suppression(predictions, conf, iou, max_det, multi_label=True)
    return [(geo.to_original(d.cpu()[:, :4]), d.cpu()[:, 4], d.cpu()[:, 5]) for d, geo in zip(found, geometry)]
