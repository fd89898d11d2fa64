"""The standard pre-extracted feature streams of AVE and LLP, turned into ``[batch, time, width]`` sequences.

- LLP: audio VGGish ``[B, T, 128]``; 2-D visual ResNet-152 ``[B, 8T, 2048]`` (8 frames a second),
  projected and averaged over each second's frames; 3-D visual R(2+1)D ``[B, T, 512]``. The two
  visual streams are concatenated and projected, as MM-Pyramid and HAN do.
- AVE: audio VGGish ``[B, T, 128]``; visual VGG-19 pool5 maps ``[B, T, 7, 7, 512]``, or the same
  pooled to ``[B, T, 512]``. Maps are averaged over their regions (a convforge choice for the
  attention models; AVEL's own attention reads the regions, see :func:`visual_regions`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError

LLP_INPUT = ((10, 128), (80, 2048), (10, 512))  # audio, 2-D visual (8 frames a second), 3-D visual
AVE_INPUT = ((10, 128), (10, 7, 7, 512))  # audio, visual pool5 maps


def visual_regions(visual: torch.Tensor) -> torch.Tensor:
    """AVE visual features as regions ``[B, T, R, C]``: maps ``[B, T, H, W, C]`` flattened, pooled ones R = 1."""
    if visual.dim() == 5:
        return visual.flatten(2, 3)
    if visual.dim() == 3:
        return visual[:, :, None]
    raise InvalidValueError(f"AVE visual features must be [batch, time, channels] or [batch, time, height, width, "
                            f"channels], got shape {tuple(visual.shape)}")  # fmt: skip


class LLPProjection(nn.Module):
    """LLP's three streams → audio and visual sequences ``[B, T, width]``."""

    def __init__(self, width: int, audio_dim: int = 128, visual_dim: int = 2048, visual_3d_dim: int = 512,
                 frames_per_segment: int = 8) -> None:  # fmt: skip
        super().__init__()
        self.frames_per_segment = frames_per_segment
        self.audio_in = nn.Linear(audio_dim, width)
        self.visual_in = nn.Linear(visual_dim, width)
        self.visual_3d_in = nn.Linear(visual_3d_dim, width)
        self.visual_fuse = nn.Linear(2 * width, width)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor,
                visual_3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        frames = self.visual_in(visual)  # [B, 8T, width]: then each second's frames averaged
        frames = F.avg_pool1d(frames.transpose(1, 2), self.frames_per_segment).transpose(1, 2)
        return self.audio_in(audio), self.visual_fuse(torch.cat([frames, self.visual_3d_in(visual_3d)], -1))


class AVEProjection(nn.Module):
    """AVE's two streams → audio and visual sequences ``[B, T, width]`` (visual maps averaged over regions)."""

    def __init__(self, width: int, audio_dim: int = 128, visual_dim: int = 512) -> None:
        super().__init__()
        self.audio_in = nn.Linear(audio_dim, width)
        self.visual_in = nn.Linear(visual_dim, width)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.audio_in(audio), self.visual_in(visual_regions(visual).mean(2))
