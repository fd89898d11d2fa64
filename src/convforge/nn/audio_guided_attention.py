"""AVEL's audio-guided visual attention (Tian et al., ECCV 2018): audio picks the image regions that sound.

For visual regions ``V [B, T, R, Cv]`` and audio ``a [B, T, Ca]``:
``α = softmax_R(wᵀ tanh(W_v relu(U_v V) + W_a relu(U_a a)))`` and the output is ``Σ_R α V``
(``[B, T, Cv]``). A pooled visual feature is one region (R = 1), where the attention is the identity.
"""

from __future__ import annotations

import torch
from torch import nn


class AudioGuidedAttention(nn.Module):
    """Attention over visual regions, weighted by how well each matches the segment's audio."""

    def __init__(self, audio_channels: int, visual_channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.audio_in = nn.Sequential(nn.Linear(audio_channels, hidden), nn.ReLU())
        self.visual_in = nn.Sequential(nn.Linear(visual_channels, hidden), nn.ReLU())
        self.audio_key = nn.Linear(hidden, hidden, bias=False)
        self.visual_key = nn.Linear(hidden, hidden, bias=False)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        keys = self.visual_key(self.visual_in(regions)) + self.audio_key(self.audio_in(audio))[:, :, None]
        weights = torch.softmax(self.score(torch.tanh(keys)), dim=2)  # [B, T, R, 1]
        return (weights * regions).sum(2)
