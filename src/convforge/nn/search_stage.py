"""A searchable network stage: a strided transition, then residual branches in a sequential or parallel layout.

The branch types a search chooses among:

- ``ib``: inverted bottleneck body, 1×1 expand → depthwise k×k → 1×1 project (BatchNorm,
  ReLU6 inside, none after the projection);
- ``ib_se`` / ``ib_eca``: the same with squeeze-excitation (timm's ``SEModule``, reduction 4)
  or efficient channel attention (timm's ``EcaModule``) after the depthwise convolution;
- ``conv``: a plain k×k conv → BatchNorm → ReLU (the SimpleNet unit); its expansion is unused.

The residual layouts are those of :mod:`convforge.nn.residual_stack`: ``sequential``
computes (I + F_d) ∘ … ∘ (I + F_1), ``parallel`` computes I + Σ F_i.
"""

from __future__ import annotations

from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.residual_stack import ParallelResidualStack, SequentialResidualStack

BRANCHES = ("ib", "ib_se", "ib_eca", "conv")
LAYOUTS = ("sequential", "parallel")


def make_branch(channels: int, kernel: int, expansion: int, branch: str) -> nn.Module:
    """One residual branch of ``channels`` → ``channels`` of the given type (see the module docstring)."""
    if branch not in BRANCHES:
        raise ValueError(f"branch {branch!r} is not one of {', '.join(BRANCHES)}")
    if branch == "conv":
        return ConvNormAct(channels, channels, kernel, act_layer=nn.ReLU)
    from timm.layers import EcaModule, SEModule

    hidden = channels * expansion
    layers: list[nn.Module] = []
    if expansion != 1:
        layers.append(ConvNormAct(channels, hidden, 1, act_layer=nn.ReLU6))
    layers.append(ConvNormAct(hidden, hidden, kernel, groups=hidden, act_layer=nn.ReLU6))
    if branch == "ib_se":
        layers.append(SEModule(hidden, rd_ratio=0.25))
    elif branch == "ib_eca":
        layers.append(EcaModule(hidden))
    layers.append(ConvNormAct(hidden, channels, 1, act_layer=None))
    return nn.Sequential(*layers)


class SearchStage(nn.Sequential):
    """k×k conv (``stride``) from ``in_channels`` to ``out_channels``, then ``depth`` residual branches."""

    def __init__(self, in_channels: int, out_channels: int, depth: int = 1, kernel: int = 3, expansion: int = 1,
                 branch: str = "ib", layout: str = "sequential", stride: int = 2) -> None:  # fmt: skip
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        super().__init__()
        self.add_module("transition", ConvNormAct(in_channels, out_channels, kernel, stride, act_layer=nn.ReLU))
        if depth:
            branches = [make_branch(out_channels, kernel, expansion, branch) for _ in range(depth)]
            stack = (SequentialResidualStack.from_branches(branches) if layout == "sequential"
                     else ParallelResidualStack.from_branches(branches))  # fmt: skip
            self.add_module("residual", stack)
