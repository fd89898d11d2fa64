"""Image classification: cross-entropy with optional label smoothing; loss, top-1 and top-5 accuracy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convforge.atomic import write_json_atomic
from convforge.compress.distillation import hinton_kd_loss
from convforge.data import Augment, TensorLoader, load_dataset
from convforge.data.image_file import read_image
from convforge.data.image_folder import IMAGENET_MEAN, IMAGENET_STD, FolderLoader, is_image_folder
from convforge.errors import InvalidValueError
from convforge.field_checks import check_bools, check_image_size, check_ints, check_range
from convforge.output_files import check_output_files
from convforge.tables import text_table
from convforge.tasks.base import Predictions, TaskData, TaskSettings, first_examples
from convforge.tasks.classify.predict import prepare_image, top_classes

PREDICTIONS_FILE = "predictions.json"


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many labels are among the top-k logits, for each k (k is capped at the number of classes)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return [int(hits[:, :k].any(dim=1).sum()) for k in ks]


@dataclass
class ClassifySettings(TaskSettings):
    """Classification's own recipe fields: augmentation, ImageFolder reading, label smoothing."""

    crop_padding: int = 2  # random translation in pixels (0 = off)
    flip: bool = True  # random horizontal flips
    cutout: int = 0  # cutout square side in pixels (0 = off)
    image_size: int = 224  # ImageFolder data: training crops and evaluation size
    workers: int = 2  # ImageFolder data: DataLoader worker processes
    label_smoothing: float = 0.0

    def validate(self, epochs: int) -> None:
        check_image_size(self)
        check_ints(self, "crop_padding", "cutout", "workers", minimum=0)
        check_bools(self, "flip")
        check_range(self, "label_smoothing", 0, 1, high_inclusive=False)


class ClassificationTask:
    """Classification over the in-memory datasets of :mod:`convforge.data`, or an ImageFolder tree."""

    name = "classify"
    primary_metric = "top1"
    default_data = "fashion-mnist"
    settings_class = ClassifySettings
    any_input_size = False

    def recipe_defaults(self, info: Any) -> dict[str, Any]:
        return {}

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        if is_image_folder(recipe.data):
            return self._folder_data(recipe, rank, world_size, channels_last)
        train = load_dataset(recipe.data, "train", root=recipe.data_root)
        val = load_dataset(recipe.data, "test", root=recipe.data_root)
        if recipe.train_subset:
            train = train.subset(recipe.train_subset, seed=recipe.seed)
        if recipe.val_subset:
            val = val.subset(recipe.val_subset, seed=recipe.seed)
        settings = recipe.task_settings
        augment = Augment(settings.crop_padding, settings.flip, settings.cutout)
        common = dict(seed=recipe.seed, rank=rank, world_size=world_size, channels_last=channels_last)
        return TaskData(
            train=TensorLoader(train, recipe.batch_size, train=True, augment=augment, **common),
            val=TensorLoader(val, max(recipe.batch_size, 256), train=False, **common),
            model_kwargs={"num_classes": train.num_classes, "in_chans": train.image_size[0]},
            input_size=train.image_size,
            info={
                "classes": train.classes,
                "mean": train.mean,
                "std": train.std,
                "train_examples": len(train),
                "val_examples": len(val),
                "source": train.source,
            },  # fmt: skip
        )

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """The test split (or an ImageFolder's val/ folder) of ``data``, by default of ``recipe.data``."""
        return self.build_data(replace(recipe, data=data) if data else recipe).val

    def calibration_inputs(self, recipe: Any, count: int, seed: int = 0) -> Iterator[torch.Tensor]:
        """``count`` training images drawn with ``seed``, prepared as for evaluation (no augmentation)."""
        batch = min(count, 64)
        if is_image_folder(recipe.data):
            settings = recipe.task_settings
            loader: Iterable = FolderLoader(recipe.data, "train", settings.image_size, batch, settings.workers,
                                            seed=seed, augment=False)  # fmt: skip
        else:
            train = load_dataset(recipe.data, "train", root=recipe.data_root).subset(count, seed=seed)
            loader = TensorLoader(train, batch, train=False)
        yield from first_examples((images for images, _ in loader), count)

    def _folder_data(self, recipe: Any, rank: int, world_size: int, channels_last: bool) -> TaskData:
        settings = recipe.task_settings
        common = dict(image_size=settings.image_size, batch_size=recipe.batch_size, workers=settings.workers,
                      seed=recipe.seed, rank=rank, world_size=world_size, channels_last=channels_last)  # fmt: skip
        train = FolderLoader(recipe.data, "train", **common)
        val = FolderLoader(recipe.data, "val", **common)
        return TaskData(
            train=train,
            val=val,
            model_kwargs={"num_classes": len(train.classes), "in_chans": 3},
            input_size=(3, settings.image_size, settings.image_size),
            info={"classes": train.classes, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                  "train_examples": len(train.dataset), "val_examples": len(val.dataset), "source": recipe.data},
        )  # fmt: skip

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        images, labels = (t.to(device, non_blocking=True) for t in batch)
        logits = model(images)
        return F.cross_entropy(logits, labels, label_smoothing=recipe.task_settings.label_smoothing), len(labels)

    def distillation_loss(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, recipe: Any
    ) -> torch.Tensor:
        """Hinton's loss at the recipe's ``kd_temperature``."""
        return hinton_kd_loss(student_logits, teacher_logits, recipe.kd_temperature)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable, device: torch.device) -> dict[str, float]:
        """Sums of loss, top-1 and top-5 hits and the example count; :meth:`summarise` turns them into %."""
        sums = torch.zeros(4, dtype=torch.float64)
        for images, labels in batches:
            images, labels = images.to(device), labels.to(device)
            logits = model(images).float()
            top1, top5 = topk_correct(logits, labels)
            loss = F.cross_entropy(logits, labels, reduction="sum").item()
            sums += torch.tensor([loss, top1, top5, len(labels)], dtype=torch.float64)
        return {"loss_sum": sums[0].item(), "top1_sum": sums[1].item(), "top5_sum": sums[2].item(),
                "count": sums[3].item()}  # fmt: skip

    @staticmethod
    def summarise(sums: dict[str, float]) -> dict[str, float]:
        """Mean loss and top-1/top-5 accuracy in % from summed counts."""
        n = max(sums["count"], 1)
        return {"loss": sums["loss_sum"] / n, "top1": 100 * sums["top1_sum"] / n, "top5": 100 * sums["top5_sum"] / n}

    def validation_report(self, model: nn.Module, batches: Iterable, device: torch.device, config: dict[str, Any],
                          out: Path, title: str = "") -> tuple[str, list[Path]]:  # fmt: skip
        """The confusion matrix (``confusion_matrix.png``) and per-class accuracy (``per_class.csv``, and as a
        table) over ``batches``, written into ``out``; returns the table and the files."""
        from convforge.atomic import write_text_atomic
        from convforge.tasks.classify.confusion import (
            class_names,
            confusion_matrix,
            per_class_csv,
            per_class_table,
            plot_confusion,
        )

        count = int((config.get("model_kwargs") or {}).get("num_classes") or len(config.get("classes") or []))
        matrix = confusion_matrix(model, batches, device, count)
        names = class_names(config.get("classes"), count)
        files = [plot_confusion(matrix, names, out / "confusion_matrix.png", title),
                 write_text_atomic(out / "per_class.csv", per_class_csv(matrix, names))]  # fmt: skip
        return per_class_table(matrix, names), files

    # ------------------------------------------------------------ inference

    def model_input(self, image: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
        """The image resized to the run's input size, in its channels, normalised as in training."""
        kwargs = config.get("model_kwargs") or {}
        channels = int(kwargs.get("in_chans", len(config["mean"])))
        size = tuple(config.get("input_size") or (channels, 32, 32))
        return prepare_image(image, (channels, *size[-2:]), tuple(config["mean"]), tuple(config["std"]))

    def predict(self, trained: Any, image: torch.Tensor, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` most probable classes of ``image`` with their probabilities (0–1), best first."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidValueError(f"top_k must be a positive integer, got {top_k!r}")
        batch = self.model_input(image, trained.config)
        return top_classes(trained.model, batch, trained.config.get("classes") or [], top_k)

    def predict_files(self, trained: Any, paths: list[Path], out: Path | None = None, top_k: int = 5,
                      overwrite: bool = False) -> Predictions:  # fmt: skip
        """The top classes of every image; with ``out``, also ``<out>/predictions.json`` (an existing one is
        replaced only with ``overwrite``)."""
        if out is not None:
            check_output_files(Path(out), [PREDICTIONS_FILE], overwrite)
        results = {str(path): self.predict(trained, read_image(path), top_k) for path in paths}
        several = len(results) > 1
        rows = [((path,) if several else ()) + (name, f"{100 * p:.2f} %")
                for path, ranked in results.items() for name, p in ranked]  # fmt: skip
        headers = (["image"] if several else []) + ["class", "probability"]
        files = []
        if out is not None:
            files.append(write_json_atomic(Path(out) / PREDICTIONS_FILE,
                                           {k: [{"class": c, "probability": p} for c, p in v]
                                            for k, v in results.items()}))  # fmt: skip
        return Predictions(results, text_table(headers, rows, align="l" * several + "lr"), files)
