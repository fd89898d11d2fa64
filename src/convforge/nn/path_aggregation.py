"""The path-aggregation network (PAN, Liu et al., "Path Aggregation Network for Instance Segmentation",
CVPR 2018): an FPN, then a bottom-up path.

The bottom-up path starts at the finest FPN output, N₁ = P₁. Each next level is
N₍ᵢ₊₁₎ = conv3×3(conv3×3 stride 2(Nᵢ) + P₍ᵢ₊₁₎), each conv followed by ReLU as in the paper, with BatchNorm
before it (convforge's choice, as in its other conv units). A coarser
level whose size is not half the finer one's is met by resizing the strided output (nearest) to it.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.feature_pyramid import FeaturePyramid, check_order, match_size


class PathAggregation(nn.Module):
    """PAN over ``len(in_channels)`` levels, finest first: every output has ``out_channels`` channels at its
    input's size."""

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.fpn = FeaturePyramid(in_channels, out_channels)
        levels = len(in_channels)
        self.down = nn.ModuleList(ConvNormAct(out_channels, out_channels, 3, 2, act_layer=nn.ReLU)
                                  for _ in range(levels - 1))  # fmt: skip
        self.fuse = nn.ModuleList(ConvNormAct(out_channels, out_channels, 3, 1, act_layer=nn.ReLU)
                                  for _ in range(levels - 1))  # fmt: skip
        self.out_channels = [out_channels] * levels

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        check_order(features, "PAN")
        pyramid = self.fpn(features)
        outputs = [pyramid[0]]
        for down, fuse, lateral in zip(self.down, self.fuse, pyramid[1:]):
            outputs.append(fuse(match_size(down(outputs[-1]), lateral) + lateral))
        return outputs
