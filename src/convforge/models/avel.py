"""AVEL-style event localisation (Tian et al., ECCV 2018, "Audio-Visual Event Localization in Unconstrained
Videos"): audio-guided visual attention, then a bidirectional LSTM per stream, and a per-segment classifier.

Written from the paper's description: the attention reads AVE's 7×7 visual regions (or one region when the
features are pooled), each stream runs through a bidirectional LSTM of ``width`` units a direction, and the
two are concatenated for convforge's :class:`~convforge.nn.segment_head.SegmentClassifier` (AVEL's own
fusion network is not reproduced).
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.audio_guided_attention import AudioGuidedAttention
from convforge.nn.av_projection import AVE_INPUT, visual_regions
from convforge.nn.segment_head import SegmentClassifier
from convforge.registry import register_model

PAPER = "Audio-Visual Event Localization in Unconstrained Videos (AVEL)"


class AVEL(nn.Module):
    """``(audio [B, T, 128], visual [B, T, 512] or [B, T, 7, 7, 512])`` → segment logits and video logits."""

    def __init__(self, num_classes: int = 29, width: int = 128, audio_dim: int = 128, visual_dim: int = 512,
                 dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        self.attention = AudioGuidedAttention(audio_dim, visual_dim, hidden=2 * width)
        self.audio_lstm = nn.LSTM(audio_dim, width, batch_first=True, bidirectional=True)
        self.visual_lstm = nn.LSTM(visual_dim, width, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = SegmentClassifier(4 * width, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended = self.attention(audio, visual_regions(visual))
        a, _ = self.audio_lstm(audio)
        v, _ = self.visual_lstm(attended)
        return self.head(self.drop(torch.cat([a, v], -1)))


@register_model(family="avel", task="av-event", paper=PAPER, input_size=AVE_INPUT, num_classes=29)
def avel(num_classes: int = 29, width: int = 128, dropout: float = 0.2) -> AVEL:
    """AVEL-style: audio-guided visual attention and bidirectional LSTMs (``width`` units a direction)."""
    return AVEL(num_classes, width, dropout=dropout)
