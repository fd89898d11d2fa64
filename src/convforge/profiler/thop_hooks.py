"""The ``thop_hooks`` convention: what the original thop sees, through forward hooks on the module classes it knows.

thop 0.1 (pytorch-OpCounter), the counter behind published figures of its time,
counts a module only when its exact class has a hook (a subclass such as timm's
``BatchNormAct2d`` is not counted), and never sees what a model computes with
functional calls (``F.softmax`` inside a detection head, ``x.mean`` inside a block).
LeYOLO's GFLOPs are reproduced with this convention. An operation's ``thop`` cost
counts here when the innermost module running it is of one of these classes.

Ultralytics' thop 2.2 counts differently: it follows subclasses, counts GroupNorm,
LogSoftmax and some functional products, and nearest upsampling as 0.
"""

from __future__ import annotations

from torch import nn

# the classes thop 0.1's hooks count, matched exactly, as thop 0.1 matches them
HOOKED: frozenset[type[nn.Module]] = frozenset({
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.Linear,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.PReLU,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d,
    nn.Softmax,
})  # fmt: skip


def seen_by_thop(module_class: type | None) -> bool:
    """Whether thop's hooks count what a module of ``module_class`` runs directly."""
    return module_class in HOOKED
