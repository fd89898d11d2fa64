"""The feature pyramid network (FPN, Lin et al., CVPR 2017), as a module of several inputs and outputs.

It wraps torchvision's :class:`~torchvision.ops.FeaturePyramidNetwork`: a 1×1 lateral conv per level,
a top-down path that adds each coarser level upsampled (nearest) to the next finer one, and a 3×3
conv on each sum. Inputs and outputs are lists ordered from the finest level to the coarsest.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError


def check_levels(in_channels: list[int], out_channels: int, name: str) -> None:
    """Refuse a neck's channels in one sentence: at least two levels, each a positive channel count."""
    if not isinstance(in_channels, (list, tuple)) or len(in_channels) < 2:
        raise InvalidValueError(f"{name} reads at least 2 levels (finest first), got {in_channels!r}")
    if not all(isinstance(c, int) and c > 0 for c in [*in_channels, out_channels]):
        raise InvalidValueError(f"{name} needs positive channel counts, got inputs {in_channels!r} and output "
                                f"{out_channels!r}")  # fmt: skip


def check_order(features: list[torch.Tensor], name: str) -> None:
    """Refuse levels that do not run finest first (each no larger than the one before it), in one sentence."""
    sizes = [tuple(f.shape[-2:]) for f in features]
    if any(b[0] > a[0] or b[1] > a[1] for a, b in zip(sizes, sizes[1:])):
        raise InvalidValueError(f"{name} reads its levels finest first, each no larger than the one before; got "
                                f"sizes {sizes}")  # fmt: skip


def match_size(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` resized (nearest) to ``like``'s height and width when they differ, else ``x`` itself."""
    return x if x.shape[-2:] == like.shape[-2:] else F.interpolate(x, size=like.shape[-2:], mode="nearest")


class FeaturePyramid(nn.Module):
    """FPN over ``len(in_channels)`` levels: every output has ``out_channels`` channels at its input's size."""

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        check_levels(in_channels, out_channels, "FPN")
        self.fpn = FeaturePyramidNetwork(list(in_channels), out_channels)
        self.out_channels = [out_channels] * len(in_channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        check_order(features, "FPN")
        named = OrderedDict((str(i), f) for i, f in enumerate(features))
        return list(self.fpn(named).values())
