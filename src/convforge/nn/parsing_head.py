"""HAN's video-parsing head: per-segment, per-stream class probabilities, pooled into video-level probabilities.

For streams ``[batch, time, 2, channels]`` (audio first): segment probabilities
``p = σ(W h)``; attention over time ``softmax_t(A h)`` and over the two streams
``softmax_s(B h)``, both per class. The video's global probability is
``Σ_t Σ_s attn_t · attn_s · p``, and each stream's own is ``Σ_t attn_t · p`` (HAN; used as released by
MM-Pyramid).
"""

from __future__ import annotations

import torch
from torch import nn


class VideoParsingHead(nn.Module):
    """``[B, T, 2, C]`` → global, audio and visual video probabilities ``[B, classes]`` and segment probabilities
    ``[B, T, 2, classes]``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.classify = nn.Linear(channels, num_classes)
        self.attend_time = nn.Linear(channels, num_classes)
        self.attend_stream = nn.Linear(channels, num_classes)

    def forward(self, streams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        segment_probs = torch.sigmoid(self.classify(streams))
        over_time = torch.softmax(self.attend_time(streams), dim=1)
        over_streams = torch.softmax(self.attend_stream(streams), dim=2)
        weighted = over_time * segment_probs
        global_probs = (weighted * over_streams).sum(dim=2).sum(dim=1)
        return global_probs, weighted[:, :, 0].sum(1), weighted[:, :, 1].sum(1), segment_probs
