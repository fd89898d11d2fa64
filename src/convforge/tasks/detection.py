"""Object detection on YOLO-format data: the LeYOLO/YOLOv8 loss in training, COCO mAP in evaluation.

The model's last detection head (a :class:`~convforge.nn.detect_head.DetectHead`)
gives raw maps in training mode, which :class:`DetectionLoss` scores against the
batch's boxes, and decoded boxes in evaluation mode, which go through NMS and are
scored on the original images by :class:`MeanAveragePrecision` (COCO's mAP50-95).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from convforge.data.detection_loader import Augmentation, DetectionLoader
from convforge.data.yolo_detection import load_detection_split
from convforge.errors import ConvforgeError
from convforge.nn.detect_head import DetectHead
from convforge.tasks.base import TaskData
from convforge.tasks.boxes import non_max_suppression
from convforge.tasks.coco_map import MeanAveragePrecision
from convforge.tasks.detection_loss import DetectionLoss

VAL_CONF = 0.001  # the score floor for mAP (every detection counts toward the precision-recall curve)
VAL_IOU = 0.7
VAL_MAX_DET = 300


def find_head(model: nn.Module) -> DetectHead:
    """The detection head of ``model`` (the last :class:`DetectHead` it contains)."""
    heads = [m for m in model.modules() if isinstance(m, DetectHead)]
    if not heads:
        raise ConvforgeError(f"{type(model).__name__} has no detection head (DetectHead); the detect task trains "
                             "detectors such as leyolo_nano or a spec ending in a Detect row")  # fmt: skip
    return heads[-1]


class DetectionTask:
    """Detection of the classes named by a dataset YAML, at ``recipe.image_size`` pixels (square letterbox)."""

    name = "detect"
    primary_metric = "map50_95"

    def __init__(self) -> None:
        self.gains = (7.5, 0.5, 1.5)  # box, cls, dfl: the recipe's, once data is built
        self._losses: dict[int, DetectionLoss] = {}  # per head (the EMA copy has its own)

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        self.gains = (recipe.box_gain, recipe.cls_gain, recipe.dfl_gain)
        train = load_detection_split(recipe.data, "train", recipe.data_root)
        val = load_detection_split(recipe.data, "val", recipe.data_root)
        if train.names != val.names:
            raise ConvforgeError(f"{train.source}: train and val name different classes")
        augment = Augmentation(recipe.zoom, recipe.translate, 0.5 if recipe.flip else 0.0, tuple(recipe.hsv))
        loader = DetectionLoader(train, recipe.image_size, recipe.batch_size, augment, shuffle=True,
                                 seed=recipe.seed, rank=rank, world_size=world_size)  # fmt: skip
        # mAP is not a sum over images, so the main process scores the whole validation set alone
        val_loader = DetectionLoader(val, recipe.image_size, recipe.batch_size, None)
        if rank != 0:
            val_loader.indices = []
        return TaskData(
            train=loader,
            val=val_loader,
            model_kwargs={"num_classes": len(train.names), "in_chans": 3},
            input_size=(3, recipe.image_size, recipe.image_size),
            info={
                "classes": train.names,
                "train_images": len(train),
                "train_boxes": train.num_boxes,
                "val_images": len(val),
                "val_boxes": val.num_boxes,
                "source": train.source,
            },  # fmt: skip
        )

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """The validation split of ``data`` (a dataset YAML or name), by default of ``recipe.data``."""
        self.gains = (recipe.box_gain, recipe.cls_gain, recipe.dfl_gain)
        dataset = load_detection_split(data or recipe.data, "val", recipe.data_root)
        return DetectionLoader(dataset, recipe.image_size, recipe.batch_size, None)

    def _loss_for(self, model: nn.Module) -> DetectionLoss:
        head = find_head(model)
        if id(head) not in self._losses or self._losses[id(head)].head is not head:
            self._losses[id(head)] = DetectionLoss(head, *self.gains)
        return self._losses[id(head)]

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        images, targets = batch
        images = images.to(device, non_blocking=True)
        maps = model(images)
        if not isinstance(maps, list):
            raise ConvforgeError("in training mode a detector must return its head's raw maps (a list per level)")
        return self._loss_for(model)(maps, targets).total, len(images)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable, device: torch.device) -> dict[str, float]:
        """COCO mAP50-95, mAP50 and mAP75 over all images, the mean loss, and the image count."""
        head = find_head(model)
        captured: list[list[torch.Tensor]] = []
        hook = head.register_forward_hook(lambda module, args, output: captured.append(args[0]))
        metric = MeanAveragePrecision()
        sums = {"loss_sum": 0.0, "box_sum": 0.0, "cls_sum": 0.0, "dfl_sum": 0.0, "count": 0.0}
        loss_fn = self._loss_for(model)
        try:
            for batch in batches:
                captured.clear()
                output = model(batch.images.to(device)).float()
                parts = loss_fn([m.float() for m in head.raw_maps(captured[-1])], batch.targets)
                n = len(batch.images)
                for key, value in (("loss", parts.total), ("box", parts.box), ("cls", parts.cls), ("dfl", parts.dfl)):
                    sums[f"{key}_sum"] += value.item() * n
                sums["count"] += n
                for detections, geometry, gt_boxes, gt_classes in zip(
                    non_max_suppression(output, VAL_CONF, VAL_IOU, VAL_MAX_DET, multi_label=True), batch.geometry,
                    batch.gt_boxes,
                    batch.gt_classes,
                ):  # fmt: skip
                    detections = detections.cpu()
                    boxes = geometry.to_original(detections[:, :4])
                    metric.add(gt_boxes, gt_classes, boxes, detections[:, 4], detections[:, 5])
        finally:
            hook.remove()
        scores = metric.compute() if metric.images else {"map50_95": 0.0, "map50": 0.0, "map75": 0.0}
        return {**sums, "map50_95": scores["map50_95"], "map50": scores["map50"], "map75": scores["map75"]}

    @staticmethod
    def summarise(sums: dict[str, float]) -> dict[str, float]:
        """Mean losses per image, and mAP (0–1) as computed on the whole validation set."""
        n = max(sums["count"], 1)
        return {
            "loss": sums["loss_sum"] / n,
            "box_loss": sums["box_sum"] / n,
            "cls_loss": sums["cls_sum"] / n,
            "dfl_loss": sums["dfl_sum"] / n,
            "map50_95": sums["map50_95"],
            "map50": sums["map50"],
            "map75": sums["map75"],
        }
