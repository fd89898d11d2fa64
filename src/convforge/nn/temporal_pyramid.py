"""MM-Pyramid's attentive feature pyramid and its adaptive semantic fusion, for two streams (audio, visual).

- :class:`PyramidUnit` (dilation d): per stream, band-masked self-attention and cross-modal
  attention (keys and values from the other stream's input to the unit; one cross-attention
  layer serves both directions, as released), combined by
  :class:`~convforge.nn.gated_fusion.GatedFusion`, then a
  :class:`~convforge.nn.dilated_temporal.DilatedTemporalBlock` of the same dilation.
- :class:`LevelFusion` (one per stream): an attention layer (unmasked) attends across the
  pyramid's levels at each time step, then each level is weighted by σ(Linear(channels → 1))
  and the levels are summed (the weights are not normalised, as released).

Streams are ``[batch, time, channels]``.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.band_attention import BandMaskedAttention
from convforge.nn.dilated_temporal import DilatedTemporalBlock
from convforge.nn.gated_fusion import GatedFusion

LEVELS_SEEN = 1 << 16  # a band wider than any pyramid: every level attends to every other


class PyramidUnit(nn.Module):
    """One level of the pyramid for an (audio, visual) pair at ``dilation``."""

    def __init__(self, channels: int, dilation: int, heads: int = 8, feedforward: int | None = None,
                 dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        self.dilation = dilation

        def attention() -> BandMaskedAttention:
            return BandMaskedAttention(channels, heads, dilation, feedforward, dropout)

        self.self_audio, self.self_visual = attention(), attention()
        self.cross = attention()  # shared: audio ← visual and visual ← audio
        self.gate_audio, self.gate_visual = GatedFusion(channels), GatedFusion(channels)
        self.conv_audio = DilatedTemporalBlock(channels, max(dilation, 1))
        self.conv_visual = DilatedTemporalBlock(channels, max(dilation, 1))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.gate_audio(self.self_audio(audio), self.cross(audio, visual))
        v = self.gate_visual(self.self_visual(visual), self.cross(visual, audio))
        return self.conv_audio(a), self.conv_visual(v)


class LevelFusion(nn.Module):
    """Attention across ``levels`` at each time step, then their σ-weighted sum: ``[levels, B, T, C] → [B, T, C]``."""

    def __init__(self, channels: int, heads: int = 8, feedforward: int | None = None, dropout: float = 0.2) -> None:
        super().__init__()
        self.across = BandMaskedAttention(channels, heads, LEVELS_SEEN, feedforward, dropout)
        self.weight = nn.Linear(channels, 1)

    def forward(self, levels: torch.Tensor) -> torch.Tensor:
        count, batch, time, channels = levels.shape
        per_step = levels.permute(1, 2, 0, 3).reshape(batch * time, count, channels)  # each step: its levels
        attended = self.across(per_step)
        weights = torch.sigmoid(self.weight(attended))  # [B·T, levels, 1], not normalised
        return (weights * attended).sum(1).view(batch, time, channels)
