"""MM-Pyramid's gated combination of a stream's self-attention and its cross-modal attention.

``out = σ(W1 [sa; ca]) ⊙ sa + σ(W2 [sa; ca]) ⊙ ca``: two sigmoid gates, each read from both inputs,
weigh what the stream found in itself and what it found in the other modality. The gates are not
normalised against each other, as released.
"""

from __future__ import annotations

import torch
from torch import nn


class GatedFusion(nn.Module):
    """Gate-weighted sum of two ``[..., channels]`` tensors, each gate computed from both."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate_self = nn.Linear(2 * channels, channels)
        self.gate_cross = nn.Linear(2 * channels, channels)

    def forward(self, own: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
        both = torch.cat([own, cross], -1)
        return torch.sigmoid(self.gate_self(both)) * own + torch.sigmoid(self.gate_cross(both)) * cross
