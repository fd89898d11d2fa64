"""Object detection on YOLO-format data: the LeYOLO/YOLOv8 loss in training, COCO mAP in evaluation.

The model's last detection head (a :class:`~convforge.nn.detect_head.DetectHead`)
gives raw maps in training mode, which :class:`DetectionLoss` scores against the
batch's boxes, and decoded boxes in evaluation mode, which go through NMS and are
scored on the original images by :class:`MeanAveragePrecision` (COCO's mAP50-95).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convforge.data.detection_loader import Augmentation, DetectionLoader
from convforge.data.yolo_detection import load_detection_split
from convforge.errors import ConvforgeError
from convforge.field_checks import check_bools, check_image_size, check_range, is_number, rejected
from convforge.nn.detect_head import DetectHead
from convforge.output_files import check_output_files, fresh_folder, remove_if_empty
from convforge.tasks.base import Predictions, TaskData, TaskSettings, first_examples, output_names
from convforge.tasks.detect.boxes import original_detections
from convforge.tasks.detect.coco_map import MeanAveragePrecision
from convforge.tasks.detect.loss import DetectionLoss
from convforge.tasks.detect.predict import (
    DETECTIONS_FILE,
    TASK,
    detect_in_image,
    detections_table,
    letterboxed_input,
    write_detections,
)

DEFAULT_BATCH = 16  # Ultralytics' default; the recipe's 128 suits small classification images
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


@dataclass
class DetectSettings(TaskSettings):
    """Detection's own recipe fields: the square input side, augmentation, and the loss gains."""

    image_size: int = 640  # square input side in pixels (letterboxed); a multiple of 32
    flip: bool = True  # random horizontal flips
    zoom: float = 0.5  # random zoom in [1 - zoom, 1 + zoom]
    translate: float = 0.1  # random shift, as a fraction of the image side
    hsv: list[float] = field(default_factory=lambda: [0.015, 0.7, 0.4])  # hue, saturation, value gains
    box_gain: float = 7.5
    cls_gain: float = 0.5
    dfl_gain: float = 1.5

    def validate(self, epochs: int) -> None:
        check_image_size(self)
        if self.image_size % 32:
            raise rejected("image_size", self.image_size, "use a multiple of 32 for detection (the head's coarsest "
                                                          "stride)")  # fmt: skip
        check_bools(self, "flip")
        check_range(self, "zoom", 0, 1, high_inclusive=False)
        check_range(self, "translate", 0, 0.5)
        for name in ("box_gain", "cls_gain", "dfl_gain"):
            check_range(self, name, 0, 1e30)
        hsv_ok = isinstance(self.hsv, list) and len(self.hsv) == 3
        if not hsv_ok or any(not is_number(g) or not 0 <= g <= 1 for g in self.hsv):
            raise rejected("hsv", self.hsv, "use three gains in [0, 1] for hue, saturation and value, e.g. "
                                            "[0.015, 0.7, 0.4]")  # fmt: skip


class DetectionTask:
    """Detection of the classes named by a dataset YAML, at ``image_size`` pixels (square letterbox)."""

    name = TASK
    primary_metric = "map50_95"
    default_data = "coco128.yaml"
    settings_class = DetectSettings
    any_input_size = False

    def __init__(self) -> None:
        self.gains = (7.5, 0.5, 1.5)  # box, cls, dfl: the recipe's, once data is built
        self._losses: dict[int, DetectionLoss] = {}  # per head (the EMA copy has its own)

    def recipe_defaults(self, info: Any) -> dict[str, Any]:
        """A registered detector trains at its published input side, 16 images a batch (as Ultralytics does)."""
        return {"image_size": int(info.input_size[-1]), "batch_size": DEFAULT_BATCH}

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        settings = recipe.task_settings
        self.gains = (settings.box_gain, settings.cls_gain, settings.dfl_gain)
        train = load_detection_split(recipe.data, "train", recipe.data_root).subset(recipe.train_subset, recipe.seed)
        val = load_detection_split(recipe.data, "val", recipe.data_root).subset(recipe.val_subset, recipe.seed)
        if train.names != val.names:
            raise ConvforgeError(f"{train.source}: train and val name different classes")
        augment = Augmentation(settings.zoom, settings.translate, 0.5 if settings.flip else 0.0, tuple(settings.hsv))
        loader = DetectionLoader(train, settings.image_size, recipe.batch_size, augment, shuffle=True,
                                 seed=recipe.seed, rank=rank, world_size=world_size)  # fmt: skip
        # mAP is not a sum over images, so the main process scores the whole validation set alone
        val_loader = DetectionLoader(val, settings.image_size, recipe.batch_size, None)
        if rank != 0:
            val_loader.indices = []
        return TaskData(
            train=loader,
            val=val_loader,
            model_kwargs={"num_classes": len(train.names), "in_chans": 3},
            input_size=(3, settings.image_size, settings.image_size),
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
        settings = recipe.task_settings
        self.gains = (settings.box_gain, settings.cls_gain, settings.dfl_gain)
        dataset = load_detection_split(data or recipe.data, "val", recipe.data_root)
        dataset = dataset.subset(recipe.val_subset, recipe.seed)
        return DetectionLoader(dataset, settings.image_size, recipe.batch_size, None)

    def calibration_inputs(self, recipe: Any, count: int, seed: int = 0) -> Iterator[torch.Tensor]:
        """``count`` training images drawn with ``seed``, letterboxed as for evaluation (no augmentation)."""
        train = load_detection_split(recipe.data, "train", recipe.data_root)
        loader = DetectionLoader(train, recipe.task_settings.image_size, min(count, 16), None, shuffle=True, seed=seed)
        yield from first_examples((batch.images for batch in loader), count)

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
        """COCO mAP50-95, mAP50 and mAP75 over all images, the mean loss, and the image count.

        A model without a visible head (an ONNX file run by onnxruntime) is scored on mAP alone.
        """
        head = find_head(model) if any(True for _ in model.parameters()) else None
        captured: list[list[torch.Tensor]] = []
        hook = head.register_forward_hook(lambda module, args, output: captured.append(args[0])) if head else None
        metric = MeanAveragePrecision()
        sums = {"loss_sum": 0.0, "box_sum": 0.0, "cls_sum": 0.0, "dfl_sum": 0.0} if head else {}
        sums["count"] = 0.0
        loss_fn = self._loss_for(model) if head else None
        try:
            for batch in batches:
                captured.clear()
                output = model(batch.images.to(device)).float()
                n = len(batch.images)
                if head is not None and loss_fn is not None:
                    parts = loss_fn([m.float() for m in head.raw_maps(captured[-1])], batch.targets)
                    for key, value in (("loss", parts.total), ("box", parts.box), ("cls", parts.cls),
                                       ("dfl", parts.dfl)):  # fmt: skip
                        sums[f"{key}_sum"] += value.item() * n
                sums["count"] += n
                found = original_detections(output, batch.geometry, VAL_CONF, VAL_IOU, VAL_MAX_DET)
                for (boxes, scores, classes), gt_boxes, gt_classes in zip(found, batch.gt_boxes, batch.gt_classes):
                    metric.add(gt_boxes, gt_classes, boxes, scores, classes)
        finally:
            if hook is not None:
                hook.remove()
        scores = metric.compute() if metric.images else {"map50_95": 0.0, "map50": 0.0, "map75": 0.0}
        return {**sums, "map50_95": scores["map50_95"], "map50": scores["map50"], "map75": scores["map75"]}

    def validation_report(self, model: nn.Module, batches: Iterable, device: torch.device, config: dict[str, Any],
                          out: Path, title: str = "") -> tuple[str, list[Path]]:  # fmt: skip
        """The PR curve, the confusion matrix and a mosaic of predictions over ``batches``, written into ``out``;
        returns the per-class AP table and the files."""
        from convforge.tasks.detect.validation_plots import validation_plots

        names = list(config.get("classes") or [])
        return validation_plots(model, batches, device, names, out, title, (VAL_CONF, VAL_IOU, VAL_MAX_DET))

    @staticmethod
    def summarise(sums: dict[str, float]) -> dict[str, float]:
        """Mean losses per image (when measured), and mAP (0–1) as computed on the whole validation set."""
        n = max(sums["count"], 1)
        losses = {"loss": "loss_sum", "box_loss": "box_sum", "cls_loss": "cls_sum", "dfl_loss": "dfl_sum"}
        return {**{name: sums[key] / n for name, key in losses.items() if key in sums},
                "map50_95": sums["map50_95"], "map50": sums["map50"], "map75": sums["map75"]}  # fmt: skip

    # ------------------------------------------------------------ inference

    def model_input(self, image: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
        """The image letterboxed to the run's square input side, scaled to 0–1."""
        side = config["recipe"].get("image_size") or config["input_size"][-1]
        return letterboxed_input(image, int(side))[0]

    def predict(self, trained: Any, image: torch.Tensor, conf: float = 0.25, iou: float = 0.7,
                max_det: int = 300) -> list:  # fmt: skip
        """The objects found in ``image`` (a list of :class:`~convforge.tasks.detect.predict.Detection`), best
        first: scores above ``conf``, NMS at ``iou``, at most ``max_det``."""
        return detect_in_image(trained, image, conf, iou, max_det)

    def predict_files(self, trained: Any, paths: list[Path], out: Path | None = None, conf: float = 0.25,
                      iou: float = 0.7, max_det: int = 300, overwrite: bool = False) -> Predictions:  # fmt: skip
        """Detect in every image; write the drawn images and ``detections.json`` into ``out`` (default: a fresh
        ``<run>/predict`` folder); an existing file there is replaced only with ``overwrite``."""
        from convforge.data.image_file import read_image

        fresh = out is None
        out = Path(out) if out is not None else fresh_folder(trained.run_dir / "predict")
        try:
            check_output_files(out, [*output_names([str(p) for p in paths], ".png").values(), DETECTIONS_FILE],
                               overwrite)  # fmt: skip
            results = {str(path): self.predict(trained, read_image(path), conf, iou, max_det) for path in paths}
            files = write_detections(results, out)
        except BaseException:
            if fresh:
                remove_if_empty(out)
            raise
        return Predictions(results, detections_table(results), files)
