"""Collapsible linear blocks (SESR): an over-parameterised linear pair that folds into one convolution.

Expanded, the block is a k×k convolution to ``expansion`` channels followed by a 1×1
convolution to the output channels, both with biases and nothing non-linear between
them, plus the input when ``residual`` is set. Being linear, the whole block equals one
k×k convolution whose weight is the composition of the two,

    W[o, i] = Σ_p W1x1[o, p] · Wkxk[p, i],      b = W1x1 · b_kxk + b_1x1,

with the identity added at the kernel centre for the residual (W[c, c, k//2, k//2] += 1).
The bias stays a true bias.

By default the block trains in that collapsed form: every forward pass composes the
small kernel afresh from the expanded parameters and convolves with it, so a step costs
about what the small network costs while gradients still reach the expanded
parameters. ``mode="expanded"`` runs the two convolutions instead (the same function,
at the large network's cost). :meth:`CollapsibleLinearBlock.collapse` returns the
plain ``nn.Conv2d`` for inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError

MODES = ("collapsed", "expanded")


class CollapsibleLinearBlock(nn.Module):
    """k×k conv (in → expansion) → 1×1 conv (expansion → out), optionally + input; foldable into one k×k conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        expansion: int = 256,
        residual: bool = False,
        mode: str = "collapsed",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise InvalidValueError(f"kernel_size must be odd (the output keeps the input's size), got {kernel_size}")
        if residual and in_channels != out_channels:
            raise InvalidValueError(
                f"a residual needs in_channels == out_channels, got {in_channels} and {out_channels}"
            )
        if mode not in MODES:
            raise InvalidValueError(f"mode {mode!r} is not known; use one of {', '.join(MODES)}")
        self.kernel_size, self.residual, self.mode = kernel_size, residual, mode
        self.expand = nn.Conv2d(in_channels, expansion, kernel_size, padding=kernel_size // 2)
        self.squeeze = nn.Conv2d(expansion, out_channels, 1)

    @property
    def in_channels(self) -> int:
        return self.expand.in_channels

    @property
    def out_channels(self) -> int:
        return self.squeeze.out_channels

    def collapsed_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight out×in×k×k, bias out) of the single convolution equal to this block (differentiable)."""
        mix = self.squeeze.weight[:, :, 0, 0]  # out × expansion
        weight = torch.einsum("op,pikl->oikl", mix, self.expand.weight)
        bias = mix @ self.expand.bias + self.squeeze.bias
        if self.residual:
            centre = self.kernel_size // 2
            identity = torch.zeros_like(weight)
            channels = torch.arange(self.out_channels, device=weight.device)
            identity[channels, channels, centre, centre] = 1
            weight = weight + identity
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "collapsed":
            weight, bias = self.collapsed_parameters()
            return F.conv2d(x, weight, bias, padding=self.kernel_size // 2)
        out = self.squeeze(self.expand(x))
        return out + x if self.residual else out

    @torch.no_grad()
    def collapse(self) -> nn.Conv2d:
        """The equivalent plain k×k convolution, with a true bias, for inference."""
        weight, bias = self.collapsed_parameters()
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, padding=self.kernel_size // 2)
        conv = conv.to(device=weight.device, dtype=weight.dtype)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return conv

    def extra_repr(self) -> str:
        return f"residual={self.residual}, mode={self.mode!r}"
