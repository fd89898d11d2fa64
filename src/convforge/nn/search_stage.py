"""A searchable network stage: a strided transition, then residual branches in a sequential or parallel layout.

The branch types a search chooses among:

- ``ib``: inverted bottleneck body, 1×1 expand → depthwise k×k → 1×1 project (BatchNorm,
  ReLU6 inside, none after the projection);
- ``ib_se`` / ``ib_eca``: the same with squeeze-excitation (timm's ``SEModule``, reduction 4)
  or efficient channel attention (timm's ``EcaModule``) after the depthwise convolution;
- ``ib_cbam``: the same with CBAM (timm's ``CbamModule``) after the depthwise convolution;
- ``conv``: a plain k×k conv → BatchNorm → ReLU (the SimpleNet unit); its expansion is unused;
- ``ghost``: GhostNet's body, a Ghost module to ``expansion`` × channels (ReLU) then one back (no
  activation), each with a k×k cheap depthwise operation (timm's ``GhostModule``);
- ``uib``: MobileNetV4's universal inverted bottleneck in its ExtraDW form, a k×k depthwise conv before
  the expansion and one inside it (timm's ``UniversalInvertedResidual``, its own skip off);
- ``repvgg`` / ``mobileone``: a re-parameterisable k×k block (timm's ``RepVggBlock`` /
  ``MobileOneBlock``), which folds into one k×k conv; its expansion is unused.

The residual layouts are those of :mod:`convforge.nn.residual_stack`: ``sequential``
computes (I + F_d) ∘ … ∘ (I + F_1), ``parallel`` computes I + Σ F_i.
"""

from __future__ import annotations

from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.residual_stack import ParallelResidualStack, SequentialResidualStack

BRANCHES = ("ib", "ib_se", "ib_eca", "ib_cbam", "conv", "ghost", "uib", "repvgg", "mobileone")
REPARAMETERISABLE = ("repvgg", "mobileone")
LAYOUTS = ("sequential", "parallel")


def make_branch(channels: int, kernel: int, expansion: int, branch: str) -> nn.Module:
    """One residual branch of ``channels`` → ``channels`` of the given type (see the module docstring)."""
    if branch not in BRANCHES:
        raise ValueError(f"branch {branch!r} is not one of {', '.join(BRANCHES)}")
    if branch == "conv":
        return ConvNormAct(channels, channels, kernel, act_layer=nn.ReLU)
    if branch in ("ghost", "uib", *REPARAMETERISABLE):
        return _zoo_branch(channels, kernel, expansion, branch)
    hidden = channels * expansion
    from timm.layers import EcaModule, SEModule
    from timm.layers.cbam import CbamModule

    layers: list[nn.Module] = []
    if expansion != 1:
        layers.append(ConvNormAct(channels, hidden, 1, act_layer=nn.ReLU6))
    layers.append(ConvNormAct(hidden, hidden, kernel, groups=hidden, act_layer=nn.ReLU6))
    if branch == "ib_se":
        layers.append(SEModule(hidden, rd_ratio=0.25))
    elif branch == "ib_eca":
        layers.append(EcaModule(hidden))
    elif branch == "ib_cbam":
        layers.append(CbamModule(hidden, rd_ratio=0.0625))
    layers.append(ConvNormAct(hidden, channels, 1, act_layer=None))
    return nn.Sequential(*layers)


def _zoo_branch(channels: int, kernel: int, expansion: int, branch: str) -> nn.Module:
    """A residual branch built from one of timm's block-zoo classes (see the module docstring)."""
    if branch == "ghost":
        from timm.models.ghostnet import GhostModule

        hidden = channels * expansion
        return nn.Sequential(GhostModule(channels, hidden, dw_size=kernel),
                             GhostModule(hidden, channels, dw_size=kernel, act_layer=nn.Identity))  # fmt: skip
    if branch == "uib":
        from timm.models._efficientnet_blocks import UniversalInvertedResidual

        return UniversalInvertedResidual(channels, channels, kernel, kernel, 0, noskip=True, exp_ratio=expansion,
                                         layer_scale_init_value=None)  # fmt: skip
    from timm.models.byobnet import MobileOneBlock, RepVggBlock

    return (RepVggBlock if branch == "repvgg" else MobileOneBlock)(channels, channels, kernel)


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
