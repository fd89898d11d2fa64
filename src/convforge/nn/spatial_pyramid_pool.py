"""SPPF: spatial pyramid pooling by three chained max-pools, as in YOLOv5/v8 and LeYOLO."""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.inverted_bottleneck import BN_EPS, BN_MOMENTUM


def conv_unit(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
              groups: int = 1) -> ConvNormAct:  # fmt: skip
    """The Ultralytics "Conv" unit: Conv2d(bias=False, padding k//2) → BatchNorm(eps 1e-3, momentum 0.03) → SiLU."""
    return ConvNormAct(in_channels, out_channels, kernel_size, stride, groups=groups, bn_eps=BN_EPS,
                       bn_momentum=BN_MOMENTUM, act_layer=nn.SiLU)  # fmt: skip


class SPPF(nn.Module):
    """1×1 conv to half the input width → three chained k×k max-pools (stride 1) → concat of all four → 1×1 conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        hidden = in_channels // 2
        self.reduce = conv_unit(in_channels, hidden, 1)
        self.pool = nn.MaxPool2d(kernel_size, stride=1, padding=kernel_size // 2)
        self.fuse = conv_unit(hidden * 4, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = [self.reduce(x)]
        for _ in range(3):
            levels.append(self.pool(levels[-1]))
        return self.fuse(torch.cat(levels, 1))
