"""FSRCNN (Dong et al., 2016): a fast SR network that works at LR size and upsamples by a transposed conv.

Feature extraction 5×5 (d = 56) → shrink 1×1 (s = 12) → m = 4 mapping convs 3×3 (s) →
expand 1×1 (d) → 9×9 transposed conv with stride ``scale``; PReLU after every conv but
the last. On the Y channel.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.registry import register_model

PAPER = "Accelerating the Super-Resolution Convolutional Neural Network (Dong et al., 2016)"


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m) for ×``scale``."""

    def __init__(self, scale: int = 2, in_chans: int = 1, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(in_chans, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.upsample = nn.ConvTranspose2d(d, in_chans, 9, stride=scale, padding=4, output_padding=scale - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.body(x))


@register_model(family="fsrcnn", task="sr", paper=PAPER, input_size=(1, 360, 640), num_classes=0)
def fsrcnn(scale: int = 2, in_chans: int = 1, d: int = 56, s: int = 12, m: int = 4) -> FSRCNN:
    """FSRCNN(56, 12, 4) for ×``scale`` on one channel; the default input is a 360p frame."""
    return FSRCNN(scale, in_chans, d, s, m)
