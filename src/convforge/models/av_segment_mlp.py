"""A per-segment MLP for AVE: each one-second segment classified from its own audio and visual features alone.

The baseline with no temporal context: what the temporal models add is measured against it. Visual maps are
averaged over their regions.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.av_projection import AVE_INPUT, visual_regions
from convforge.nn.segment_head import SegmentClassifier
from convforge.registry import register_model


class SegmentMLP(nn.Module):
    """``(audio [B, T, 128], visual [B, T, 512] or maps)`` → segment logits and video logits, segment by segment."""

    def __init__(self, num_classes: int = 29, width: int = 256, audio_dim: int = 128, visual_dim: int = 512,
                 dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(audio_dim + visual_dim, width), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout))  # fmt: skip
        self.head = SegmentClassifier(width, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.mlp(torch.cat([audio, visual_regions(visual).mean(2)], -1)))


@register_model(family="av_segment_mlp", task="av-event", input_size=AVE_INPUT, num_classes=29)
def av_segment_mlp(num_classes: int = 29, width: int = 256, dropout: float = 0.2) -> SegmentMLP:
    """A two-layer MLP on each segment's concatenated audio and pooled visual features; no temporal context."""
    return SegmentMLP(num_classes, width, dropout=dropout)
