"""The anchor-free detection head of LeYOLO (DNiN, decoupled) and the decoding of its outputs.

For each feature level the head predicts, at every grid cell, a distribution over
``reg_max`` bins for each of the four distances from the cell centre to the box sides
(left, top, right, bottom, in units of the level's stride), and one logit per class.

- In training mode the forward pass returns the raw maps, one ``(B, 4·reg_max + nc, H, W)``
  tensor per level, which the detection loss reads.
- In evaluation mode it returns ``(B, 4 + nc, A)`` over all A cells of all levels: boxes
  as x1, y1, x2, y2 in input pixels, then class probabilities (sigmoid). The distances
  are the expectations of the softmaxed bins, taken by a fixed 1×1 convolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from convforge.nn.spatial_pyramid_pool import conv_unit


def make_anchors(shapes: list[tuple[int, int]], strides: list[int] | tuple[int, ...], offset: float = 0.5,
                 device: torch.device | None = None, dtype: torch.dtype = torch.float32,
                 ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Grid-cell centres ``(A, 2)`` as (x, y) in units of each level's stride, and each cell's stride ``(A, 1)``."""
    points, stride_column = [], []
    for (h, w), stride in zip(shapes, strides):
        ys = torch.arange(h, device=device, dtype=dtype) + offset
        xs = torch.arange(w, device=device, dtype=dtype) + offset
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x, grid_y), -1).reshape(-1, 2))
        stride_column.append(torch.full((h * w, 1), float(stride), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride_column)


def distances_to_boxes(distances: torch.Tensor, points: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Boxes x1, y1, x2, y2 from (left, top, right, bottom) distances around anchor ``points`` along ``dim``."""
    left_top, right_bottom = distances.chunk(2, dim)
    return torch.cat((points - left_top, points + right_bottom), dim)


def boxes_to_distances(boxes: torch.Tensor, points: torch.Tensor, limit: float) -> torch.Tensor:
    """(left, top, right, bottom) distances from ``points`` to xyxy ``boxes``, clipped to [0, limit]."""
    x1y1, x2y2 = boxes.chunk(2, -1)
    return torch.cat((points - x1y1, x2y2 - points), -1).clamp(0, limit)


class DistributionIntegral(nn.Module):
    """The expectation of a softmax over ``bins`` values 0…bins−1, as a fixed (untrained) 1×1 convolution."""

    def __init__(self, bins: int = 16) -> None:
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(bins, dtype=torch.float32).view(1, bins, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 4·bins, A)`` logits → ``(B, 4, A)`` expected distances (in bins)."""
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.bins, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def _branch(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """1×1 Conv unit → two depthwise 3×3 Conv units → 1×1 Conv2d with bias (the DNiN branch)."""
    return nn.Sequential(
        conv_unit(in_channels, hidden, 1),
        conv_unit(hidden, hidden, 3, groups=hidden),
        conv_unit(hidden, hidden, 3, groups=hidden),
        nn.Conv2d(hidden, out_channels, 1),
    )


class DetectHead(nn.Module):
    """Decoupled anchor-free head over several levels: a box branch (4·reg_max) and a class branch (nc) each."""

    def __init__(self, in_channels: list[int], num_classes: int = 80, reg_max: int = 16,
                 strides: tuple[int, ...] = (8, 16, 32)) -> None:  # fmt: skip
        super().__init__()
        if len(in_channels) != len(strides):
            raise ValueError(f"{len(in_channels)} input levels but {len(strides)} strides {tuple(strides)}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes, self.reg_max, self.strides = num_classes, reg_max, tuple(strides)
        box_hidden = max(16, in_channels[0] // 4, reg_max * 4)
        cls_hidden = max(in_channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(_branch(c, box_hidden, 4 * reg_max) for c in in_channels)
        self.cls = nn.ModuleList(_branch(c, cls_hidden, num_classes) for c in in_channels)
        self.integral = DistributionIntegral(reg_max)
        self.reset_biases()

    @torch.no_grad()
    def reset_biases(self, image_size: int = 640) -> None:
        """Box biases 1; class biases log(5 / nc / cells), a prior of about 5 objects per ``image_size`` image."""
        for box, cls, stride in zip(self.box, self.cls, self.strides):
            box[-1].bias.fill_(1.0)
            cls[-1].bias.fill_(math.log(5 / self.num_classes / (image_size / stride) ** 2))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        maps = self.raw_maps(features)
        return maps if self.training else self.decode(maps)

    def raw_maps(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """One ``(B, 4·reg_max + nc, H, W)`` map per level: box-distribution logits, then class logits."""
        return [torch.cat((box(x), cls(x)), 1) for x, box, cls in zip(features, self.box, self.cls)]

    def split(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Box-distribution logits ``(B, 4·reg_max, A)`` and class logits ``(B, nc, A)`` over all levels."""
        flat = torch.cat([m.flatten(2) for m in maps], 2)
        return flat.split((4 * self.reg_max, self.num_classes), 1)

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """``(B, 4 + nc, A)``: xyxy boxes in input pixels, then class probabilities."""
        distribution, logits = self.split(maps)
        points, stride = make_anchors([m.shape[2:] for m in maps], self.strides, device=maps[0].device,
                                      dtype=maps[0].dtype)  # fmt: skip
        boxes = distances_to_boxes(self.integral(distribution), points.transpose(0, 1), dim=1)
        return torch.cat((boxes * stride.transpose(0, 1), logits.sigmoid()), 1)
