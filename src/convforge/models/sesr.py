"""SESR (Bhardwaj et al., MLSys 2022): super-efficient super-resolution from collapsible linear blocks.

On the Y channel: a 5×5 linear block 1 → f; m 3×3 linear blocks f → f, each with a
short residual and followed by a per-channel PReLU; a long residual from the first
block's output; a 5×5 linear block f → scale²; the input added to each of those
scale² channels (a nearest-neighbour skip); depth-to-space; clipping to [0, 1].

Trained as registered (every linear block with ``expansion`` hidden channels, run in
collapsed form); :func:`convforge.collapse` gives the compact inference network, whose
convolution weights number 25·f + 9·m·f² + 25·f·scale².
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.nn.collapsible_linear import CollapsibleLinearBlock
from convforge.registry import register_model

PAPER = "Collapsible Linear Blocks for Super-Efficient Super Resolution (Bhardwaj et al., MLSys 2022)"


class SESR(nn.Module):
    """SESR with ``m`` middle blocks of ``features`` channels, each linear block expanded to ``expansion``."""

    def __init__(self, m: int = 5, features: int = 16, expansion: int = 256, scale: int = 2, in_chans: int = 1,
                 mode: str = "collapsed") -> None:  # fmt: skip
        super().__init__()
        self.scale = scale
        self.first = CollapsibleLinearBlock(in_chans, features, 5, expansion, mode=mode)
        self.blocks = nn.ModuleList(
            CollapsibleLinearBlock(features, features, 3, expansion, residual=True, mode=mode) for _ in range(m)
        )
        self.activations = nn.ModuleList(nn.PReLU(features) for _ in range(m))
        self.last = CollapsibleLinearBlock(features, in_chans * scale * scale, 5, expansion, mode=mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.first(x)
        h = first
        for block, activation in zip(self.blocks, self.activations):
            h = activation(block(h))
        out = self.last(h + first)
        out = out + x.repeat_interleave(self.scale * self.scale, dim=1)  # each input channel onto its scale² outputs
        return F.pixel_shuffle(out, self.scale).clamp(0, 1)


def _register(macs: str):
    """Register a SESR variant with the MACs the paper prints for it."""
    return register_model(family="sesr", task="sr", paper=PAPER, input_size=(1, 360, 640), num_classes=0,
                          published={"macs": macs})  # fmt: skip


# MACs for ×2 from 360p to 720p, as the paper prints them (the collapsed network's; the training form adds
# the small cost of composing its kernels, 0.1 %). Every variant is ×2 by default (scale=3 or 4 too).


@_register("2.05G")
def sesr_m3(scale: int = 2, in_chans: int = 1, expansion: int = 256, mode: str = "collapsed") -> SESR:
    """SESR with m = 3, f = 16, p = 256."""
    return SESR(3, 16, expansion, scale, in_chans, mode)


@_register("3.1G")
def sesr_m5(scale: int = 2, in_chans: int = 1, expansion: int = 256, mode: str = "collapsed") -> SESR:
    """SESR with m = 5, f = 16, p = 256."""
    return SESR(5, 16, expansion, scale, in_chans, mode)


@_register("4.2G")
def sesr_m7(scale: int = 2, in_chans: int = 1, expansion: int = 256, mode: str = "collapsed") -> SESR:
    """SESR with m = 7, f = 16, p = 256."""
    return SESR(7, 16, expansion, scale, in_chans, mode)


@_register("6.3G")
def sesr_m11(scale: int = 2, in_chans: int = 1, expansion: int = 64, mode: str = "collapsed") -> SESR:
    """SESR with m = 11, f = 16, p = 64."""
    return SESR(11, 16, expansion, scale, in_chans, mode)


@_register("24G")
def sesr_xl(scale: int = 2, in_chans: int = 1, expansion: int = 64, mode: str = "collapsed") -> SESR:
    """SESR-XL: m = 11, f = 32, p = 64."""
    return SESR(11, 32, expansion, scale, in_chans, mode)
