"""PSPNet's pyramid pooling module (Zhao et al., CVPR 2017): context pooled at several grid sizes.

The input is average-pooled to ``bins`` × ``bins`` grids (1, 2, 3, 6), each reduced by a 1×1 conv-BN-ReLU to
c_in / len(bins) channels, upsampled bilinearly back to the input's size, concatenated with the input, and fused
by a 3×3 conv-BN-ReLU to ``c_out`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct


class PyramidPooling(nn.Module):
    """``[B, c_in, H, W]`` → ``[B, c_out, H, W]`` with context from several pooling grids."""

    def __init__(self, c_in: int, c_out: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        reduced = max(c_in // len(bins), 1)
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvNormAct(c_in, reduced, 1, act_layer=nn.ReLU)) for b in bins
        )
        self.fuse = ConvNormAct(c_in + reduced * len(bins), c_out, 3, act_layer=nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return self.fuse(torch.cat([x, *pooled], 1))
