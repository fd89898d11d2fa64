"""The detection loss of YOLOv8 and LeYOLO: BCE on classes, CIoU and distribution focal loss on boxes.

Given the head's raw maps and the ground truth of a batch, anchors are assigned by
the :class:`TaskAlignedAssigner`, then

- ``cls``: BCE-with-logits against the soft scores, summed and divided by the scores' sum;
- ``box``: (1 − CIoU) per foreground anchor, weighted by its target score, same division;
- ``dfl``: for each box side, cross-entropy against the two bins around the target
  distance, weighted linearly (distribution focal loss), same weighting.

The total is ``box_gain·box + cls_gain·cls + dfl_gain·dfl`` (7.5, 0.5, 1.5). The
reference also multiplies it by the batch size; convforge leaves that out, so a
learning rate means the same thing here as for the other tasks (it only rescales
the gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from convforge.nn.detect_head import DetectHead, boxes_to_distances, distances_to_boxes, make_anchors
from convforge.tasks.detect.assigner import TaskAlignedAssigner
from convforge.tasks.detect.boxes import complete_iou


@dataclass
class LossParts:
    """The three weighted parts of the loss (already multiplied by their gains), and their total."""

    total: torch.Tensor
    box: torch.Tensor
    cls: torch.Tensor
    dfl: torch.Tensor


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits`` (N, bins) against real-valued targets (N,) in [0, bins − 1): CE to both neighbouring bins, mixed."""
    left = target.long()
    right = left + 1
    weight_left = right.to(target) - target
    return (F.cross_entropy(logits, left, reduction="none") * weight_left
            + F.cross_entropy(logits, right, reduction="none") * (1 - weight_left))  # fmt: skip


class DetectionLoss:
    """The loss of a :class:`DetectHead`'s training output against a batch's boxes."""

    def __init__(self, head: DetectHead, box_gain: float = 7.5, cls_gain: float = 0.5, dfl_gain: float = 1.5,
                 top_k: int = 10) -> None:  # fmt: skip
        self.head = head
        self.gains = (box_gain, cls_gain, dfl_gain)
        self.assigner = TaskAlignedAssigner(top_k, head.num_classes, alpha=0.5, beta=6.0)
        self.bins = torch.arange(head.reg_max, dtype=torch.float32)

    def __call__(self, maps: list[torch.Tensor], targets: torch.Tensor) -> LossParts:
        """``targets`` (N, 6): image index in the batch, class, x1, y1, x2, y2 in input pixels."""
        head, reg_max = self.head, self.head.reg_max
        distribution, logits = head.split(maps)
        distribution, logits = distribution.transpose(1, 2).float(), logits.transpose(1, 2).float()  # (B, A, ·)
        b, a, _ = distribution.shape
        points, stride = make_anchors([m.shape[2:] for m in maps], head.strides, device=logits.device)
        bins = self.bins.to(logits.device)
        # predicted boxes in grid units, from the expected distances
        # elementwise, not a matmul: autocast would run a matmul in bfloat16 and blur the decoded boxes
        expected = (distribution.view(b, a, 4, reg_max).softmax(-1) * bins).sum(-1)
        pred_boxes = distances_to_boxes(expected, points)

        gt_labels, gt_boxes, gt_mask = self._pad(targets, b, logits.device)
        assignment = self.assigner(logits.detach().sigmoid(), pred_boxes.detach() * stride, points * stride,
                                   gt_labels, gt_boxes, gt_mask)  # fmt: skip
        score_sum = assignment.scores.sum().clamp(min=1)
        cls = F.binary_cross_entropy_with_logits(logits, assignment.scores, reduction="sum") / score_sum

        foreground = assignment.foreground
        if foreground.any():
            weight = assignment.scores.sum(-1)[foreground]  # (P,)
            target_boxes = assignment.boxes / stride  # grid units
            iou = complete_iou(pred_boxes[foreground], target_boxes[foreground]).squeeze(-1)
            box = ((1 - iou) * weight).sum() / score_sum
            target_distances = boxes_to_distances(target_boxes, points, reg_max - 1 - 0.01)[foreground]
            dfl_each = distribution_focal_loss(distribution[foreground].view(-1, reg_max), target_distances.view(-1))
            dfl = (dfl_each.view(-1, 4).mean(-1) * weight).sum() / score_sum
        else:
            # zero, but still reaching both branches, so that every parameter gets a (zero) gradient under DDP
            box = dfl = distribution.sum() * 0 + logits.sum() * 0
        box, cls, dfl = box * self.gains[0], cls * self.gains[1], dfl * self.gains[2]
        return LossParts(box + cls + dfl, box.detach(), cls.detach(), dfl.detach())

    @staticmethod
    def _pad(targets: torch.Tensor, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Per-image labels (B, M), boxes (B, M, 4) and a mask of real boxes, padded to the largest count M."""
        targets = targets.to(device)
        counts = torch.bincount(targets[:, 0].long(), minlength=batch) if len(targets) else torch.zeros(batch)
        m = int(counts.max()) if len(targets) else 0
        labels = torch.zeros(batch, m, dtype=torch.long, device=device)
        boxes = torch.zeros(batch, m, 4, device=device)
        mask = torch.zeros(batch, m, dtype=torch.bool, device=device)
        for i in range(batch):
            rows = targets[targets[:, 0] == i]
            labels[i, : len(rows)] = rows[:, 1].long()
            boxes[i, : len(rows)] = rows[:, 2:6]
            mask[i, : len(rows)] = True
        return labels, boxes, mask
