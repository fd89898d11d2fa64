"""The blocks every spec can use, registered when :mod:`convforge.spec` is imported.

Each factory takes the row's input channels first (see
:func:`~convforge.spec.block_registry.register_block` for the calling conventions).
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.detect_head import DetectHead
from convforge.nn.inverted_bottleneck import InvertedBottleneck, MobileConv
from convforge.nn.search_stage import SearchStage
from convforge.nn.spatial_pyramid_pool import SPPF
from convforge.spec.block_registry import register_block


@register_block("Conv")
def conv(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Module:
    """Conv2d (no bias, padding k//2) → BatchNorm → SiLU."""
    return ConvNormAct(c_in, c_out, kernel, stride, groups=groups, act_layer=nn.SiLU)


@register_block("MnConv")
def mn_conv(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Module:
    """LeYOLO's mn_conv: Conv2d with bias (padding 0 when kernel == stride, else k//2) → BatchNorm → SiLU."""
    return MobileConv(c_in, c_out, kernel, stride, groups)


@register_block("IB", scaled=(2,))
def inverted_bottleneck(c_in: int, c_out: int, kernel: int = 3, expansion: int | None = None, stride: int = 1,
                        pointwise: bool = True) -> nn.Module:  # fmt: skip
    """Inverted bottleneck [c_out, k, expansion (scaled by width; None = c_in), stride, pointwise]."""
    return InvertedBottleneck(c_in, c_out, kernel, expansion, stride, pointwise)


@register_block("SPPF")
def sppf(c_in: int, c_out: int, kernel: int = 5) -> nn.Module:
    """Spatial pyramid pooling (fast): three chained max-pools, concatenated."""
    return SPPF(c_in, c_out, kernel)


@register_block("Detect", channels="same", many_inputs=True)
def detect(c_in: int | list[int], num_classes: int = 80, reg_max: int = 16) -> nn.Module:
    """The anchor-free DNiN detection head over the rows it reads (strides 8, 16, 32)."""
    levels = c_in if isinstance(c_in, list) else [c_in]
    strides = tuple(8 * 2**i for i in range(len(levels)))
    return DetectHead(levels, num_classes, reg_max, strides)


@register_block("Stage")
def stage(c_in: int, c_out: int, depth: int = 1, kernel: int = 3, expansion: int = 1, branch: str = "ib",
          layout: str = "sequential", stride: int = 2) -> nn.Module:  # fmt: skip
    """A searchable stage: strided k×k transition, then ``depth`` residual branches (see
    :data:`convforge.nn.search_stage.BRANCHES`) in a sequential or parallel layout."""
    return SearchStage(c_in, c_out, depth, kernel, expansion, branch, layout, stride)


@register_block("Classify", channels="fixed")
def classify(c_in: int, num_classes: int, dropout: float = 0.0) -> nn.Module:
    """Global average pooling → dropout → linear layer to ``num_classes`` logits."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes))


@register_block("Concat", channels="sum")
def concat(c_in: list[int], dim: int = 1) -> nn.Module:
    """Concatenation of several inputs along channels."""
    return Concat(dim)


@register_block("Upsample", channels="same")
def upsample(c_in: int, scale: int = 2, mode: str = "nearest") -> nn.Module:
    """Upsampling by ``scale``."""
    return nn.Upsample(scale_factor=scale, mode=mode)


@register_block("MaxPool", channels="same")
def max_pool(c_in: int, kernel: int = 2, stride: int | None = None, padding: int = 0) -> nn.Module:
    """Max pooling."""
    return nn.MaxPool2d(kernel, stride, padding)


class Concat(nn.Module):
    """Concatenation of a list of tensors along ``dim``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(inputs, self.dim)
