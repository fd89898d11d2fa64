"""The task-aligned assigner (TOOD, as YOLOv8 and LeYOLO train with it).

For each ground-truth box, the anchors whose centres lie inside it are ranked by the
alignment metric t = s^α · u^β, where s is the predicted score of the box's class and
u the CIoU of the predicted box with it; the top k become its positives. An anchor
claimed by several boxes goes to the one it overlaps most. Targets are the box, its
class, and a soft score: per box, t normalised so its best anchor gets that anchor's
IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from convforge.tasks.detect.boxes import complete_iou


@dataclass
class Assignment:
    """What each anchor should predict. Shapes: B images, A anchors, C classes."""

    labels: torch.Tensor  # (B, A) class index (meaningful where foreground)
    boxes: torch.Tensor  # (B, A, 4) xyxy target box
    scores: torch.Tensor  # (B, A, C) soft one-hot classification targets (0 on background)
    foreground: torch.Tensor  # (B, A) bool
    gt_index: torch.Tensor  # (B, A) which ground-truth box of the image


class TaskAlignedAssigner:
    """Assign ground-truth boxes to anchors by the task-aligned metric."""

    def __init__(self, top_k: int = 10, num_classes: int = 80, alpha: float = 0.5, beta: float = 6.0,
                 eps: float = 1e-9) -> None:  # fmt: skip
        self.top_k, self.num_classes, self.alpha, self.beta, self.eps = top_k, num_classes, alpha, beta, eps

    @torch.no_grad()
    def __call__(self, pred_scores: torch.Tensor, pred_boxes: torch.Tensor, anchors: torch.Tensor,
                 gt_labels: torch.Tensor, gt_boxes: torch.Tensor, gt_mask: torch.Tensor) -> Assignment:  # fmt: skip
        """Assign.

        ``pred_scores`` (B, A, C) probabilities; ``pred_boxes`` (B, A, 4) and ``gt_boxes``
        (B, M, 4) xyxy in pixels; ``anchors`` (A, 2) centres in pixels; ``gt_labels``
        (B, M) class indices; ``gt_mask`` (B, M) bool, true for real (not padding) boxes.
        """
        b, a, c = pred_scores.shape
        m = gt_boxes.shape[1]
        device = pred_scores.device
        if m == 0:
            return Assignment(torch.zeros(b, a, dtype=torch.long, device=device),
                              torch.zeros(b, a, 4, device=device), torch.zeros_like(pred_scores),
                              torch.zeros(b, a, dtype=torch.bool, device=device),
                              torch.zeros(b, a, dtype=torch.long, device=device))  # fmt: skip
        inside = self._centres_inside(anchors, gt_boxes) & gt_mask[..., None]  # (B, M, A)
        overlaps = torch.zeros(b, m, a, dtype=pred_boxes.dtype, device=device)
        class_scores = torch.zeros(b, m, a, dtype=pred_scores.dtype, device=device)
        image_index = torch.arange(b, device=device)[:, None].expand(b, m)
        labels = gt_labels.long().clamp(0, c - 1)
        # score of each box's class at every anchor: (B, M, A)
        all_scores = pred_scores[image_index, :, labels]  # (B, M, A)
        where = inside.nonzero(as_tuple=True)
        class_scores[where] = all_scores[where]
        gt_expanded = gt_boxes[:, :, None].expand(b, m, a, 4)[where]
        pred_expanded = pred_boxes[:, None].expand(b, m, a, 4)[where]
        overlaps[where] = complete_iou(gt_expanded, pred_expanded).squeeze(-1).clamp(0).to(overlaps.dtype)
        metric = class_scores.pow(self.alpha) * overlaps.pow(self.beta)

        top = metric.topk(min(self.top_k, a), dim=-1).indices  # (B, M, k)
        chosen = torch.zeros_like(metric, dtype=torch.bool).scatter_(-1, top, True)
        positive = chosen & inside  # (B, M, A)

        # an anchor claimed by several boxes keeps the one it overlaps most
        claims = positive.sum(1)  # (B, A)
        if (claims > 1).any():
            best = overlaps.argmax(1)  # (B, A)
            best_one_hot = torch.zeros_like(positive).scatter_(1, best[:, None], True)
            positive = torch.where((claims > 1)[:, None], best_one_hot, positive)
        foreground = positive.any(1)
        gt_index = positive.to(torch.uint8).argmax(1)  # (B, A)

        batch_offset = (torch.arange(b, device=device) * m)[:, None]
        flat = gt_index + batch_offset
        target_labels = gt_labels.long().flatten()[flat].clamp(0, c - 1)
        target_boxes = gt_boxes.reshape(-1, 4)[flat]
        target_scores = torch.nn.functional.one_hot(target_labels, c).to(pred_scores.dtype)
        target_scores = target_scores * foreground[..., None]

        metric = metric * positive
        best_metric = metric.amax(-1, keepdim=True)  # (B, M, 1)
        best_overlap = (overlaps * positive).amax(-1, keepdim=True)
        normalised = (metric * best_overlap / (best_metric + self.eps)).amax(1)  # (B, A)
        target_scores = target_scores * normalised[..., None]
        return Assignment(target_labels, target_boxes, target_scores, foreground, gt_index)

    def _centres_inside(self, anchors: torch.Tensor, gt_boxes: torch.Tensor) -> torch.Tensor:
        """(B, M, A): whether each anchor centre lies strictly inside each box."""
        left_top = anchors[None, None] - gt_boxes[:, :, None, :2]
        right_bottom = gt_boxes[:, :, None, 2:] - anchors[None, None]
        return torch.cat((left_top, right_bottom), -1).amin(-1) > self.eps
