"""The ``thop_hooks`` convention: what thop itself sees, through forward hooks on the module classes it knows.

thop counts a module only when its exact class has a hook (a subclass such as timm's
``BatchNormAct2d`` is not counted), and it never sees what a model computes with
functional calls (``F.softmax`` inside a detection head, ``x.mean`` inside a block).
Papers that report thop figures counted that way; LeYOLO's GFLOPs are reproduced
with this convention. An operation's ``thop`` cost counts here when the innermost
module running it is of one of these classes.
"""

from __future__ import annotations

from torch import nn

# the classes thop's hooks count (thop/Ultralytics register_hooks), matched exactly as thop matches them
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
