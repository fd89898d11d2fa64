"""ESPCN (Shi et al., 2016): super-resolution by a sub-pixel convolution, all computed at LR size.

conv 5×5 (64) → tanh → conv 3×3 (32) → tanh → conv 3×3 (scale² · channels) → PixelShuffle.
The input and output are the Y channel (0–1) unless ``in_chans`` says otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.registry import register_model

PAPER = "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel CNN (Shi et al., 2016)"


class ESPCN(nn.Module):
    """Three convolutions at LR resolution, then depth-to-space by ``scale``."""

    def __init__(self, scale: int = 2, in_chans: int = 1, features: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
        first, second = features
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, first, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(first, second, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(second, in_chans * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_model(family="espcn", task="sr", paper=PAPER, input_size=(1, 360, 640), num_classes=0)
def espcn(scale: int = 2, in_chans: int = 1, features: tuple[int, int] = (64, 32)) -> ESPCN:
    """ESPCN for ×``scale`` on one channel; the default input is a 360p frame (→ 720p at ×2)."""
    return ESPCN(scale, in_chans, tuple(features))
