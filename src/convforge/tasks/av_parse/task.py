"""Weakly supervised audio-visual video parsing (LLP): which of 25 events sound, show, or both, in which seconds.

- **Data**: an LLP folder in the standard layout (:mod:`convforge.data.llp`): the label CSVs and one
  ``.npy`` per video and stream. Training knows only each video's labels; validation scores the val
  split against its dense per-modality annotations; ``convforge eval RUN --data test`` scores test.
- **Features** are standardised per dimension with statistics of 256 training videos
  (:mod:`convforge.data.feature_scaling`).
- **Loss** (HAN's): ``BCE(global, y) + BCE(audio, y) + BCE(visual, (1 − ε) y + ε/2)``, the label smoothing
  ε (``visual_label_smoothing``, 0.1) on the visual branch only, as the standard code does.
- **Metrics** exactly as the standard evaluation computes them (:mod:`convforge.tasks.av_parse.metrics`):
  segment-level and event-level F1 for audio, visual and audio-visual, Type@AV and Event@AV, with segment
  predictions masked by the predicted video labels, all at the 0.5 threshold. The run is selected on
  validation segment-level Type@AV, as released.

Models take ``(audio [B, 10, 128], visual [B, 80, 2048], visual_3d [B, 10, 512])`` and return global, audio and
visual video probabilities ``[B, 25]`` and segment probabilities ``[B, 10, 2, 25]`` (audio first).
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

from convforge.data.example_batches import ExampleBatches
from convforge.data.feature_scaling import FeatureScaling
from convforge.data.llp import EVAL_FILES, FEATURE_FOLDERS, LLP_CLASSES, LLPVideos, ground_truth, read_dense_events
from convforge.data.roots import find_folder
from convforge.errors import ConvforgeError
from convforge.field_checks import check_range
from convforge.tasks.av_parse.metrics import figures_from_sums, mask_by_video_labels, score_sums, video_scores
from convforge.tasks.base import TaskData, TaskSettings
from convforge.tasks.feature_tasks import SPLIT_NAMES, FeatureFileTask

MARKERS = ("AVVP_train.csv",)
SCALING_VIDEOS = 256  # training videos the feature standardisation is fitted on


@dataclass
class AVParseSettings(TaskSettings):
    """LLP's own recipe field: the label smoothing of the visual branch's targets."""

    visual_label_smoothing: float = 0.1

    def validate(self, epochs: int) -> None:
        check_range(self, "visual_label_smoothing", 0, 1, high_inclusive=False)


def _batches(videos: LLPVideos, scaling: FeatureScaling, batch_size: int, train: bool, seed: int = 0, rank: int = 0,
             world_size: int = 1, dense: tuple[dict, dict] | None = None) -> ExampleBatches:  # fmt: skip
    """Batches of (audio, visual, visual_3d, labels), plus the audio and visual ground truth ``[B, 25, 10]`` when
    ``dense`` annotations are given."""

    def fetch(index: list[int]) -> tuple[torch.Tensor, ...]:
        streams = [
            scaling.apply(k, np.stack(arrays)) for k, arrays in enumerate(zip(*(videos.features(i) for i in index)))
        ]
        out = [torch.from_numpy(s) for s in streams] + [torch.from_numpy(videos.labels[index])]
        if dense is not None:
            truths = [ground_truth(videos.names[i], *dense) for i in index]
            out += [torch.from_numpy(np.stack([t[k] for t in truths])) for k in (0, 1)]
        return tuple(out)

    return ExampleBatches(len(videos), fetch, batch_size, train, seed, rank, world_size)


def fit_scaling(videos: LLPVideos) -> FeatureScaling:
    """Per-dimension statistics of each stream over up to :data:`SCALING_VIDEOS` training videos (a fixed draw)."""
    count = min(len(videos), SCALING_VIDEOS)
    chosen = np.random.default_rng(0).choice(len(videos), count, replace=False) if count else []
    return FeatureScaling.fit([np.stack(arrays) for arrays in zip(*(videos.features(int(i)) for i in chosen))])


def _outputs(model: nn.Module, audio: torch.Tensor, visual: torch.Tensor, visual_3d: torch.Tensor) -> tuple:
    out = model(audio, visual, visual_3d)
    if not (isinstance(out, (tuple, list)) and len(out) == 4 and out[3].dim() == 4):
        raise ConvforgeError(
            "an av-parse model returns (global, audio, visual video probabilities [batch, classes], "
            "segment probabilities [batch, time, 2, classes]), e.g. mm_pyramid_llp or han_llp"
        )
    return tuple(o.float() for o in out)


def han_loss(outputs: tuple, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """HAN's weak-label loss on the global, audio and visual video probabilities."""
    global_probs, audio_probs, visual_probs = (p.clamp(0, 1) for p in outputs[:3])
    with torch.autocast(labels.device.type, enabled=False):  # BCE on probabilities is float32 only
        return (F.binary_cross_entropy(global_probs, labels) + F.binary_cross_entropy(audio_probs, labels)
                + F.binary_cross_entropy(visual_probs, labels * (1 - smoothing) + smoothing / 2))  # fmt: skip


class AVParseTask(FeatureFileTask):
    """Weakly supervised video parsing on LLP-layout feature files."""

    name = "av-parse"
    primary_metric = "segment_type"
    default_data = "llp"
    settings_class = AVParseSettings
    any_input_size = False

    def recipe_defaults(self, info: Any) -> dict[str, Any]:
        """The released recipe's optimiser, rate, length and batch: Adam at 1e-4 without weight decay, 40 epochs,
        batch 16 (its step decay, ×0.1 every 10 epochs, is left to ``sched``, cosine by default)."""
        return {"opt": "adamw", "lr": 1e-4, "weight_decay": 0.0, "batch_size": 16, "epochs": 40}

    def folder(self, recipe: Any, data: str | None = None) -> Path:
        """The LLP folder ``data`` (default: the recipe's) names."""
        return find_folder(data or recipe.data, recipe.data_root, MARKERS, "LLP")

    @staticmethod
    def _dense(folder: Path) -> tuple[dict, dict]:
        return read_dense_events(folder / EVAL_FILES["audio"]), read_dense_events(folder / EVAL_FILES["visual"])

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        folder = self.folder(recipe)
        train = LLPVideos(folder, "train", recipe.train_subset, recipe.seed)
        val = LLPVideos(folder, "val", recipe.val_subset, recipe.seed)
        scaling = fit_scaling(train)
        return TaskData(
            train=_batches(train, scaling, recipe.batch_size, True, recipe.seed, rank, world_size),
            val=_batches(val, scaling, max(recipe.batch_size, 32), False, rank=rank, world_size=world_size,
                         dense=self._dense(folder)),
            model_kwargs={"num_classes": len(LLP_CLASSES)},
            input_size=tuple(shape for _, shape in FEATURE_FOLDERS),
            info={"classes": list(LLP_CLASSES), "train_videos": len(train), "val_videos": len(val),
                  "source": str(folder)},
        )  # fmt: skip

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """A split of the recipe's LLP folder (``val`` by default, or ``test``), or the test split of another LLP
        folder, with its dense annotations."""
        split = data if data in SPLIT_NAMES else ("test" if data else "val")
        if split == "train":
            raise ConvforgeError("LLP's training videos have no segment annotations to score; use --data val or test")
        folder = self.folder(recipe, None if data in SPLIT_NAMES else data)
        scaling = fit_scaling(LLPVideos(self.folder(recipe), "train", recipe.train_subset, recipe.seed))
        return _batches(LLPVideos(folder, split), scaling, 32, False, dense=self._dense(folder))

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        audio, visual, visual_3d, labels = (t.to(device, non_blocking=True) for t in batch[:4])
        outputs = _outputs(model, audio, visual, visual_3d)
        return han_loss(outputs, labels, recipe.task_settings.visual_label_smoothing), len(audio)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable, device: torch.device) -> dict[str, float]:
        """Sums over videos of the loss and of each video's segment- and event-level F1s."""
        scores, loss_sum = [], 0.0
        for audio, visual, visual_3d, labels, truth_audio, truth_visual in batches:
            outputs = _outputs(model, audio.to(device), visual.to(device), visual_3d.to(device))
            loss_sum += han_loss(outputs, labels.to(device), 0.0).item() * len(audio)
            global_probs, segment_probs = outputs[0].cpu().numpy(), outputs[3].cpu().numpy()
            for k in range(len(audio)):
                pred_audio = mask_by_video_labels(segment_probs[k, :, 0], global_probs[k])
                pred_visual = mask_by_video_labels(segment_probs[k, :, 1], global_probs[k])
                scores.append(video_scores(pred_audio, pred_visual, truth_audio[k].numpy(), truth_visual[k].numpy()))
        return {**score_sums(scores), "loss_sum": loss_sum, "count": float(len(scores))}

    @staticmethod
    def summarise(sums: dict[str, float]) -> dict[str, float]:
        """Mean loss and the ten LLP figures in %."""
        return {"loss": sums["loss_sum"] / max(sums["videos"], 1), **figures_from_sums(sums)}
