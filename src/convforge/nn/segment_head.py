"""A per-segment classifier with an attention-pooled video-level output, for event localisation (AVE).

Segment logits ``s_t = W h_t`` over the event classes and background; the video's logits are
``Σ_t softmax_t(a · h_t) s_t``. Supervised training reads the segment logits; weakly supervised
training, which knows only each video's class, reads the video logits, and the segments are then
scored by their own logits. This head is convforge's choice: no AVE code of MM-Pyramid was released.
"""

from __future__ import annotations

import torch
from torch import nn


class SegmentClassifier(nn.Module):
    """``[B, T, channels]`` → segment logits ``[B, T, classes]`` and video logits ``[B, classes]``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.classify = nn.Linear(channels, num_classes)
        self.attend = nn.Linear(channels, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        segment_logits = self.classify(features)
        weights = torch.softmax(self.attend(features), dim=1)  # [B, T, 1]
        return segment_logits, (weights * segment_logits).sum(1)
