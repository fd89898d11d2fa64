"""MM-Pyramid (Yu et al., ACM MM 2022): a multimodal temporal pyramid for audio-visual parsing and event localisation.

Built from :mod:`convforge.nn.temporal_pyramid` with the released wiring (JustinYuu/MM_Pyramid):

1. Input projections (:mod:`convforge.nn.av_projection`): LLP's audio, 2-D and 3-D visual
   streams, or AVE's audio and visual streams, each projected to ``width``.
2. ``levels`` pyramid units at dilations 1, 2, 4, 8, …, each level kept.
3. Per stream, attention across the levels and their σ-weighted sum.
4. A head:

   - ``mm_pyramid_llp``: HAN's video-parsing head (per-segment, per-stream sigmoid probabilities,
     attention-pooled over time and over the two streams into global, audio and visual video
     probabilities), as released.
   - ``mm_pyramid_ave``: a per-segment 29-way classifier (28 events and background) over the two
     streams concatenated, plus an attention-pooled video-level output for weak supervision
     (:class:`~convforge.nn.segment_head.SegmentClassifier`). **This head is convforge's choice**:
     no AVE code of MM-Pyramid was released, so its AVE head and loss are unknown.

Differences from the release, on purpose:

- **Streams in order.** The release concatenates [visual, audio] but reads index 0 as audio, so
  its visual stream is trained and scored as audio. convforge puts audio first, as HAN does.
- **Parameters.** The release holds 43,995,725 parameters, of which 3,168,256 are registered but
  never used: the template attention and feed-forward layers its capture and fusion modules
  keep only to copy (3,153,920), and the LayerNorm each of its 14 working attention layers
  registers but does not apply (14 × 1,024). convforge builds only what runs: 40,827,469 at the
  released defaults (width 512, 8 heads, feed-forward 512, 4 levels, 25 classes).
- The band mask is built once per length and dilation, on any device (the release rebuilds it in
  a Python loop at each call, on CUDA only).
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.errors import InvalidValueError
from convforge.nn.av_projection import AVE_INPUT, LLP_INPUT, AVEProjection, LLPProjection
from convforge.nn.parsing_head import VideoParsingHead
from convforge.nn.segment_head import SegmentClassifier
from convforge.nn.temporal_pyramid import LevelFusion, PyramidUnit
from convforge.registry import register_model

PAPER = "MM-Pyramid: Multimodal Pyramid Attentional Network for Audio-Visual Event Localization and Video Parsing"


class PyramidTrunk(nn.Module):
    """The attentive pyramid and its level fusion over an (audio, visual) pair of ``[B, T, width]`` sequences."""

    def __init__(self, width: int = 512, heads: int = 8, feedforward: int | None = None, levels: int = 4,
                 dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 8:
            raise InvalidValueError(f"levels must be an integer from 1 to 8, got {levels!r}")
        if isinstance(heads, bool) or not isinstance(heads, int) or not 1 <= heads <= 512:
            raise InvalidValueError(f"heads must be an integer from 1 to 512, got {heads!r}")
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 8192 or width % heads:
            raise InvalidValueError(f"width must be a multiple of heads ({heads}) up to 8192, got {width!r}")
        self.units = nn.ModuleList(PyramidUnit(width, 2**i, heads, feedforward, dropout) for i in range(levels))
        self.fuse_audio = LevelFusion(width, heads, feedforward, dropout)
        self.fuse_visual = LevelFusion(width, heads, feedforward, dropout)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        audio_levels, visual_levels = [], []
        for unit in self.units:
            audio, visual = unit(audio, visual)
            audio_levels.append(audio)
            visual_levels.append(visual)
        return self.fuse_audio(torch.stack(audio_levels)), self.fuse_visual(torch.stack(visual_levels))


class MMPyramid(nn.Module):
    """MM-Pyramid for LLP: ``(audio [B, T, 128], visual [B, 8T, 2048], visual_3d [B, T, 512])`` → global, audio and
    visual video-level probabilities ``[B, classes]`` and per-segment probabilities ``[B, T, 2, classes]`` (audio
    first)."""

    def __init__(self, num_classes: int = 25, width: int = 512, heads: int = 8, feedforward: int | None = None,
                 levels: int = 4, dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        self.inputs = LLPProjection(width)
        self.trunk = PyramidTrunk(width, heads, feedforward, levels, dropout)
        self.head = VideoParsingHead(width, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor,
                visual_3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        a, v = self.trunk(*self.inputs(audio, visual, visual_3d))
        return self.head(torch.stack([a, v], dim=2))


class MMPyramidAVE(nn.Module):
    """MM-Pyramid for AVE: ``(audio [B, T, 128], visual [B, T, 512] or [B, T, 7, 7, 512])`` → segment logits
    ``[B, T, classes]`` and video logits ``[B, classes]`` (classes: 28 events and background)."""

    def __init__(self, num_classes: int = 29, width: int = 512, heads: int = 8, feedforward: int | None = None,
                 levels: int = 4, dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        self.inputs = AVEProjection(width)
        self.trunk = PyramidTrunk(width, heads, feedforward, levels, dropout)
        self.head = SegmentClassifier(2 * width, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, v = self.trunk(*self.inputs(audio, visual))
        return self.head(torch.cat([a, v], -1))


@register_model(family="mm_pyramid", task="av-parse", paper=PAPER, input_size=LLP_INPUT, num_classes=25)
def mm_pyramid_llp(num_classes: int = 25, width: int = 512, levels: int = 4, heads: int = 8,
                   feedforward: int | None = None, dropout: float = 0.2) -> MMPyramid:  # fmt: skip
    """MM-Pyramid with the released LLP wiring (width 512 as released; 128 is a CPU-sized setting; the feed-forward
    width follows ``width`` unless given). The release's
    43,995,725 parameters include 3,168,256 it never uses; this model holds the 40,827,469 it does."""
    return MMPyramid(num_classes, width, heads, feedforward, levels, dropout)


@register_model(family="mm_pyramid", task="av-event", paper=PAPER, input_size=AVE_INPUT, num_classes=29)
def mm_pyramid_ave(num_classes: int = 29, width: int = 512, levels: int = 4, heads: int = 8,
                   feedforward: int | None = None, dropout: float = 0.2) -> MMPyramidAVE:  # fmt: skip
    """MM-Pyramid's trunk for AVE with convforge's per-segment 29-way head and attention-pooled video head."""
    return MMPyramidAVE(num_classes, width, heads, feedforward, levels, dropout)
