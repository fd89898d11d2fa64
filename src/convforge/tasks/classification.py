"""Image classification: cross-entropy with optional label smoothing; loss, top-1 and top-5 accuracy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convforge.data import Augment, TensorLoader, load_dataset
from convforge.data.image_file import drop_alpha
from convforge.data.image_folder import IMAGENET_MEAN, IMAGENET_STD, FolderLoader, is_image_folder
from convforge.tasks.base import TaskData


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many labels are among the top-k logits, for each k (k is capped at the number of classes)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return [int(hits[:, :k].any(dim=1).sum()) for k in ks]


class ClassificationTask:
    """Classification over the in-memory datasets of :mod:`convforge.data`."""

    name = "classify"
    primary_metric = "top1"

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        if is_image_folder(recipe.data):
            return self._folder_data(recipe, rank, world_size, channels_last)
        train = load_dataset(recipe.data, "train", root=recipe.data_root)
        val = load_dataset(recipe.data, "test", root=recipe.data_root)
        if recipe.train_subset:
            train = train.subset(recipe.train_subset, seed=recipe.seed)
        if recipe.val_subset:
            val = val.subset(recipe.val_subset, seed=recipe.seed)
        augment = Augment(recipe.crop_padding, recipe.flip, recipe.cutout)
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

    def _folder_data(self, recipe: Any, rank: int, world_size: int, channels_last: bool) -> TaskData:
        common = dict(image_size=recipe.image_size, batch_size=recipe.batch_size, workers=recipe.workers,
                      seed=recipe.seed, rank=rank, world_size=world_size, channels_last=channels_last)  # fmt: skip
        train = FolderLoader(recipe.data, "train", **common)
        val = FolderLoader(recipe.data, "val", **common)
        return TaskData(
            train=train,
            val=val,
            model_kwargs={"num_classes": len(train.classes), "in_chans": 3},
            input_size=(3, recipe.image_size, recipe.image_size),
            info={"classes": train.classes, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                  "train_examples": len(train.dataset), "val_examples": len(val.dataset), "source": recipe.data},
        )  # fmt: skip

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        images, labels = (t.to(device, non_blocking=True) for t in batch)
        logits = model(images)
        return F.cross_entropy(logits, labels, label_smoothing=recipe.label_smoothing), len(labels)

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


def prepare_image(image: torch.Tensor, input_size: tuple[int, ...], mean: tuple[float, ...], std: tuple[float, ...]):
    """A uint8 C×H×W image → a normalised 1×C×H×W batch at the model's input size and channel count."""
    channels, height, width = input_size
    image = drop_alpha(image)
    if image.shape[0] != channels:
        if channels == 1:  # ITU-R BT.601 luma
            weights = torch.tensor([0.299, 0.587, 0.114])[: image.shape[0]]
            image = (image.float() * weights.view(-1, 1, 1) / weights.sum()).sum(0, keepdim=True)
        else:
            image = image.expand(channels, -1, -1)
    x = image.float().unsqueeze(0) / 255.0
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


@torch.no_grad()
def top_classes(model: nn.Module, batch: torch.Tensor, classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of the first image in ``batch``, with probabilities (0–1)."""
    probs = model(batch).float().softmax(dim=1)[0]
    values, indices = probs.topk(min(k, probs.numel()))
    return [(classes[i] if i < len(classes) else str(i), float(v)) for v, i in zip(values.tolist(), indices.tolist())]
