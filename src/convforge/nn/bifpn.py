"""The bidirectional feature pyramid (BiFPN) of EfficientDet (Tan, Pang and Le, CVPR 2020), for any number of
levels.

Levels run finest first. Each input whose channels differ from ``out_channels`` is projected by a 1×1 conv and
BatchNorm; as in the released code, the top-down and the bottom-up nodes read separate projections. With Pᵢ the
projected inputs and L levels:

- top-down: Tᴸ = Pᴸ, and Tᵢ = node(Pᵢ, up(Tᵢ₊₁)) for i = L−1 … 1;
- bottom-up: O₁ = T₁, Oᵢ = node(Pᵢ, Tᵢ, down(Oᵢ₋₁)) for the middle levels, Oᴸ = node(Pᴸ, down(Oᴸ⁻¹)).

A node is the paper's fast normalised fusion, Σ wⱼ xⱼ / (Σ wⱼ + 10⁻⁴) with wⱼ = ReLU(learned weight), then
SiLU → depthwise 3×3 → pointwise 1×1 → BatchNorm (the order of the released EfficientDet code).
``up`` is nearest upsampling to the finer level's size; ``down`` is a 3×3 max-pool of stride 2, resized to the
coarser level's size when the two differ. torchvision and timm have no BiFPN, so it is written here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.nn.feature_pyramid import check_levels, check_order, match_size

FUSION_EPS = 1e-4


class FusionNode(nn.Module):
    """Fast normalised fusion of ``inputs`` same-shaped tensors, then a depthwise-separable conv."""

    def __init__(self, inputs: int, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(inputs))
        self.act = nn.SiLU()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        w = F.relu(self.weight)
        w = w / (w.sum() + FUSION_EPS)
        fused = sum(w[j] * x for j, x in enumerate(xs))
        return self.bn(self.pointwise(self.depthwise(self.act(fused))))


class BiFPN(nn.Module):
    """One BiFPN layer over ``len(in_channels)`` levels: every output has ``out_channels`` channels at its input's
    size. Stack layers by repeating the spec row."""

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        check_levels(in_channels, out_channels, "BiFPN")
        levels = len(in_channels)
        self.project = nn.ModuleList(_projection(c, out_channels) for c in in_channels)
        self.project_bottom_up = nn.ModuleList(_projection(c, out_channels) for c in in_channels[1:])
        self.top_down = nn.ModuleList(FusionNode(2, out_channels) for _ in range(levels - 1))
        self.bottom_up = nn.ModuleList(FusionNode(2 if i == levels - 1 else 3, out_channels)
                                       for i in range(1, levels))  # fmt: skip
        self.out_channels = [out_channels] * levels

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        check_order(features, "BiFPN")
        inputs = [project(f) for project, f in zip(self.project, features)]
        again = [inputs[0], *(project(f) for project, f in zip(self.project_bottom_up, features[1:]))]
        levels = len(inputs)
        top_down = [inputs[-1]]
        for i in range(levels - 2, -1, -1):  # coarse to fine
            upsampled = F.interpolate(top_down[0], size=inputs[i].shape[-2:], mode="nearest")
            top_down.insert(0, self.top_down[i]([inputs[i], upsampled]))
        outputs = [top_down[0]]
        for i in range(1, levels):  # fine to coarse
            down = match_size(F.max_pool2d(outputs[-1], 3, 2, 1), inputs[i])
            sources = [again[i], down] if i == levels - 1 else [again[i], top_down[i], down]
            outputs.append(self.bottom_up[i - 1](sources))
        return outputs


def _projection(in_channels: int, out_channels: int) -> nn.Module:
    """A 1×1 conv and BatchNorm to ``out_channels``, or nothing when the channels already match."""
    if in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.01))  # fmt: skip
