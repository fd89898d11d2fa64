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


def _register(name: str, m: int, features: int, expansion: int, macs: str) -> None:
    def factory(scale: int = 2, in_chans: int = 1, expansion: int = expansion, mode: str = "collapsed") -> SESR:
        return SESR(m, features, expansion, scale, in_chans, mode)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"SESR with m = {m}, f = {features}, p = {expansion}; ×2 by default (scale=3 or 4 too)."
    register_model(family="sesr", task="super_resolution", paper=PAPER, input_size=(1, 360, 640), num_classes=0,
                   published={"macs": macs})(factory)  # fmt: skip
    globals()[name] = factory


# MACs for ×2 from 360p to 720p, as the paper prints them (the collapsed network's; the training form adds
# the small cost of composing its kernels, 0.1 %)
for _name, _m, _f, _p, _macs in [
    ("sesr_m3", 3, 16, 256, "2.05G"),
    ("sesr_m5", 5, 16, 256, "3.1G"),
    ("sesr_m7", 7, 16, 256, "4.2G"),
    ("sesr_m11", 11, 16, 64, "6.3G"),
    ("sesr_xl", 11, 32, 64, "24G"),
]:
    _register(_name, _m, _f, _p, _macs)
