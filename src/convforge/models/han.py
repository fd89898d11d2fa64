"""HAN-style baselines (Tian et al., ECCV 2020, "Unified Multisensory Perception: Weakly-Supervised Audio-Visual
Video Parsing"): hybrid attention over the whole clip, without MM-Pyramid's band-limited pyramid.

The same input projections and heads as :mod:`convforge.models.mm_pyramid`, with one
:class:`~convforge.nn.hybrid_attention.HybridAttention` layer (one head, shared by both directions, as in HAN)
in place of the pyramid. ``han_llp`` is HAN's own LLP model; ``han_ave`` puts convforge's AVE head on it.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.av_projection import AVE_INPUT, LLP_INPUT, AVEProjection, LLPProjection
from convforge.nn.hybrid_attention import HybridAttention
from convforge.nn.parsing_head import VideoParsingHead
from convforge.nn.segment_head import SegmentClassifier
from convforge.registry import register_model

PAPER = "Unified Multisensory Perception: Weakly-Supervised Audio-Visual Video Parsing (HAN)"


class HANParser(nn.Module):
    """HAN for LLP: the three LLP streams → global, audio and visual video probabilities and segment probabilities."""

    def __init__(self, num_classes: int = 25, width: int = 512, heads: int = 1, feedforward: int | None = None,
                 dropout: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        self.inputs = LLPProjection(width)
        self.attention = HybridAttention(width, heads, feedforward, dropout)
        self.head = VideoParsingHead(width, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor,
                visual_3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        a, v = self.attention(*self.inputs(audio, visual, visual_3d))
        return self.head(torch.stack([a, v], dim=2))


class HANLocaliser(nn.Module):
    """HAN's hybrid attention with convforge's AVE head: segment logits ``[B, T, classes]`` and video logits."""

    def __init__(self, num_classes: int = 29, width: int = 512, heads: int = 1, feedforward: int | None = None,
                 dropout: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        self.inputs = AVEProjection(width)
        self.attention = HybridAttention(width, heads, feedforward, dropout)
        self.head = SegmentClassifier(2 * width, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, v = self.attention(*self.inputs(audio, visual))
        return self.head(torch.cat([a, v], -1))


@register_model(family="han", task="av-parse", paper=PAPER, input_size=LLP_INPUT, num_classes=25)
def han_llp(num_classes: int = 25, width: int = 512, heads: int = 1, feedforward: int | None = None,
            dropout: float = 0.1) -> HANParser:  # fmt: skip
    """HAN for weakly supervised audio-visual video parsing (width 512 as published)."""
    return HANParser(num_classes, width, heads, feedforward, dropout)


@register_model(family="han", task="av-event", paper=PAPER, input_size=AVE_INPUT, num_classes=29)
def han_ave(num_classes: int = 29, width: int = 512, heads: int = 1, feedforward: int | None = None,
            dropout: float = 0.1) -> HANLocaliser:  # fmt: skip
    """HAN-style hybrid attention for AVE event localisation, with convforge's segment head."""
    return HANLocaliser(num_classes, width, heads, feedforward, dropout)
