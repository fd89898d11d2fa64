"""Audio-visual event localisation (AVE): a class (28 events or background) for every one-second segment.

- **Data**: an AVE folder in the standard layout (:mod:`convforge.data.ave`): HDF5 audio and visual
  features, labels (rebuilt from ``Annotations.txt`` when ``labels.h5`` is absent) and split files.
  Training reads the train split and validates on val; ``convforge eval RUN --data test`` scores test.
  Model selection is on validation only (the standard AVE code keeps its best *test* accuracy).
- **Supervision**: ``full`` trains on the segment labels (cross-entropy over segments); ``weak`` knows
  only each video's class (cross-entropy on the model's video-level output), and, as in the standard
  weakly supervised setting, the background videos (``*_noisy.h5``) join training with the class
  background.
- **Features** are standardised per dimension with the training split's statistics
  (:mod:`convforge.data.feature_scaling`).
- **Metric**: segment accuracy, the argmax over the 29 classes of every segment, as the standard
  evaluation computes it; also the video-level accuracy of the video output.

Models take ``(audio [B, 10, 128], visual [B, 10, 512] or [B, 10, 7, 7, 512])`` and return segment logits
``[B, 10, 29]`` and video logits ``[B, 29]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from convforge.data.ave import (
    BACKGROUND,
    AveSplit,
    event_classes,
    load_ave_background,
    load_ave_split,
    read_annotations,
)
from convforge.data.example_batches import ExampleBatches
from convforge.data.feature_scaling import FeatureScaling
from convforge.data.roots import find_folder
from convforge.errors import ConvforgeError
from convforge.field_checks import check_bools, rejected
from convforge.tasks.base import TaskData, TaskSettings
from convforge.tasks.feature_tasks import SPLIT_NAMES, FeatureFileTask

SUPERVISION = ("full", "weak")
MARKERS = ("Annotations.txt", "labels.h5", "train_order.h5")


@dataclass
class AVEventSettings(TaskSettings):
    """AVE's own recipe fields: full or weak supervision, and whether the background videos join weak training."""

    supervision: str = "full"
    background_videos: bool = True

    def validate(self, epochs: int) -> None:
        if self.supervision not in SUPERVISION:
            raise rejected("supervision", self.supervision, f"use one of {', '.join(SUPERVISION)}")
        check_bools(self, "background_videos")


def _batches(split: AveSplit, scaling: FeatureScaling, batch_size: int, train: bool, seed: int = 0, rank: int = 0,
             world_size: int = 1) -> ExampleBatches:  # fmt: skip
    def fetch(index: list[int]) -> tuple[torch.Tensor, ...]:
        streams = [scaling.apply(k, a[index]) for k, a in enumerate((split.audio, split.visual))]
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (*streams, split.segments[index],
                                                                          split.videos[index]))  # fmt: skip

    return ExampleBatches(len(split), fetch, batch_size, train, seed, rank, world_size)


def _class_names(folder: Path) -> list[str]:
    if (folder / "Annotations.txt").is_file():
        return [*event_classes(read_annotations(folder / "Annotations.txt")), "Background"]
    return [*(f"event {k}" for k in range(BACKGROUND)), "Background"]


def _outputs(model: nn.Module, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(audio, visual)
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and out[0].dim() == 3):
        raise ConvforgeError("an av-event model returns (segment logits [batch, time, classes], video logits "
                             "[batch, classes]), e.g. mm_pyramid_ave, han_ave, avel or av_segment_mlp")  # fmt: skip
    return out[0].float(), out[1].float()


class AVEventTask(FeatureFileTask):
    """Event localisation on AVE-layout feature files, supervised by segment or by video labels."""

    name = "av-event"
    primary_metric = "accuracy"
    default_data = "ave"
    settings_class = AVEventSettings
    any_input_size = False

    def recipe_defaults(self, info: Any) -> dict[str, Any]:
        """Adam at 1e-3 without weight decay, batch 32 (convforge's choice: no AVE recipe of MM-Pyramid exists)."""
        return {"opt": "adamw", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 32, "epochs": 30}

    def folder(self, recipe: Any, data: str | None = None) -> Path:
        """The AVE folder ``data`` (default: the recipe's) names."""
        return find_folder(data or recipe.data, recipe.data_root, MARKERS, "AVE")

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        settings, folder = recipe.task_settings, self.folder(recipe)
        train = load_ave_split(folder, "train").take(recipe.train_subset, recipe.seed)
        val = load_ave_split(folder, "val").take(recipe.val_subset, recipe.seed)
        scaling = FeatureScaling.fit([train.audio, train.visual])
        background = 0
        if settings.supervision == "weak" and settings.background_videos:
            extra = load_ave_background(folder, train.visual.shape[2:])
            train, background = AveSplit.join(train, extra), len(extra)
        return TaskData(
            train=_batches(train, scaling, recipe.batch_size, True, recipe.seed, rank, world_size),
            val=_batches(val, scaling, max(recipe.batch_size, 64), False, rank=rank, world_size=world_size),
            model_kwargs={"num_classes": BACKGROUND + 1},
            input_size=(tuple(train.audio.shape[1:]), tuple(train.visual.shape[1:])),
            info={"classes": _class_names(folder), "train_videos": len(train) - background,
                  "background_videos": background, "val_videos": len(val), "source": str(folder)},
        )  # fmt: skip

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """A split of the recipe's AVE folder (``train``, ``val``, ``test``; default ``val``), or the test split of
        another AVE folder, standardised with the statistics of the training videos the run trained on."""
        split = data if data in SPLIT_NAMES else ("test" if data else "val")
        folder = self.folder(recipe, None if data in SPLIT_NAMES else data)
        train = load_ave_split(self.folder(recipe), "train").take(recipe.train_subset, recipe.seed)
        return _batches(load_ave_split(folder, split), FeatureScaling.fit([train.audio, train.visual]), 64, False)

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        audio, visual, segments, videos = (t.to(device, non_blocking=True) for t in batch)
        segment_logits, video_logits = _outputs(model, audio, visual)
        if recipe.task_settings.supervision == "weak":
            return F.cross_entropy(video_logits, videos), len(audio)
        return F.cross_entropy(segment_logits.flatten(0, 1), segments.flatten()), len(audio)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable, device: torch.device) -> dict[str, float]:
        """Sums over segments of cross-entropy and correct argmaxes, and over videos of correct video classes."""
        sums = dict.fromkeys(("loss_sum", "correct", "segments", "video_correct", "count"), 0.0)
        for audio, visual, segments, videos in batches:
            segment_logits, video_logits = _outputs(model, audio.to(device), visual.to(device))
            segments, videos = segments.to(device), videos.to(device)
            sums["loss_sum"] += F.cross_entropy(
                segment_logits.flatten(0, 1), segments.flatten(), reduction="sum"
            ).item()
            sums["correct"] += (segment_logits.argmax(-1) == segments).sum().item()
            sums["segments"] += segments.numel()
            sums["video_correct"] += (video_logits.argmax(-1) == videos).sum().item()
            sums["count"] += len(videos)
        return sums

    @staticmethod
    def summarise(sums: dict[str, float]) -> dict[str, float]:
        """Mean segment cross-entropy, segment accuracy (%) and video accuracy (%)."""
        segments, videos = max(sums["segments"], 1), max(sums["count"], 1)
        return {"loss": sums["loss_sum"] / segments, "accuracy": 100 * sums["correct"] / segments,
                "video_accuracy": 100 * sums["video_correct"] / videos}  # fmt: skip
