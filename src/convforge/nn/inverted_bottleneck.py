"""The inverted bottleneck of LeYOLO (and MobileNetV2): expand 1×1 → depthwise k×k → project 1×1, no activation after.

Its convolutions are "mn_conv" units, Conv2d *with* bias → BatchNorm → SiLU, padded
``k // 2`` (or 0 when the kernel equals the stride), with BatchNorm eps 1e-3 and
momentum 0.03 as in LeYOLO's releases.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct

BN_EPS = 1e-3
BN_MOMENTUM = 0.03


class MobileConv(ConvNormAct):
    """The "mn_conv" unit: Conv2d(k, stride, bias=True) → BatchNorm → SiLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1) -> None:  # fmt: skip
        padding = 0 if kernel_size == stride else kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=True,
                         bn_eps=BN_EPS, bn_momentum=BN_MOMENTUM, act_layer=nn.SiLU)  # fmt: skip


class InvertedBottleneck(nn.Module):
    """[1×1 expansion to ``expansion`` channels] → depthwise k×k (stride) → 1×1 projection with bias → BatchNorm.

    ``expansion`` is the hidden width (``None``: the input width); ``pointwise=False``
    drops the expansion, so the depthwise convolution runs on the input itself. The
    input is added to the output when the shapes allow (same channels, stride 1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, expansion: int | None = None,
                 stride: int = 1, pointwise: bool = True) -> None:  # fmt: skip
        super().__init__()
        hidden = in_channels if expansion is None else expansion
        if not pointwise and hidden != in_channels:
            raise ValueError(f"without the 1×1 expansion the depthwise convolution runs on the input's "
                             f"{in_channels} channels, so the expansion must be {in_channels} or None, "
                             f"not {expansion}")  # fmt: skip
        self.expand = MobileConv(in_channels, hidden, 1) if pointwise else nn.Identity()
        self.depthwise = MobileConv(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = nn.Conv2d(hidden, out_channels, 1, bias=True)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.residual = in_channels == out_channels and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.project(self.depthwise(self.expand(x))))
        return x + y if self.residual else y
