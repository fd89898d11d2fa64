"""MM-Pyramid's dilated temporal block: Conv1d k=3 at dilation d → ReLU → Conv1d 1×1, plus the input, → ReLU.

It reads and returns ``[batch, time, channels]``; each output step sees the steps t − d, t and
t + d of the input (zero beyond the ends), so a stack of units with d = 1, 2, 4, 8 covers the
whole of a 10-second clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError


class DilatedTemporalBlock(nn.Module):
    """A residual temporal convolution of dilation ``dilation`` over ``[batch, time, channels]``."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 1:
            raise InvalidValueError(f"dilation must be a positive integer, got {dilation!r}")
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation, padding=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mix(F.relu(self.conv(x.transpose(1, 2)))).transpose(1, 2)
        return F.relu(x + y)
