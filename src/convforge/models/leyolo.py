"""LeYOLO (arXiv 2406.14239): FLOP-efficient anchor-free detectors, declared as specs.

The layer lists live in ``models/specs/leyolo_*.yaml``, row for row as released.
``leyolo_large`` is the Medium network at 768 pixels. The published GFLOPs are
counted with the ``thop`` convention after folding BatchNorm into the convolution of
the "Conv" units only (SPPF and the head); :func:`counting_form` makes that model.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from torch import nn

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.registry import register_model
from convforge.spec import SpecModel, build_spec
from convforge.surgery.fuse_bn import fuse_bn

PAPER = "LeYOLO, New Scalable and Efficient CNN Architecture for Object Detection (arXiv 2406.14239)"

# GFLOPs (thop convention, 2 × MACs) as published, per model and input size
PUBLISHED_GFLOPS = {
    ("leyolo_nano", 320): "0.66",
    ("leyolo_nano", 480): "1.47",
    ("leyolo_small", 480): "2.53",
    ("leyolo_small", 640): "4.51",
    ("leyolo_medium", 640): "5.8",
    ("leyolo_large", 768): "8.4",
}


def spec_path(variant: str) -> Path:
    """The spec file of ``nano``, ``small`` or ``medium`` (``large`` shares medium's)."""
    return Path(str(resources.files("convforge.models") / "specs" / f"leyolo_{variant}.yaml"))


def is_conv_unit(module: nn.Module) -> bool:
    """Whether ``module`` is an Ultralytics "Conv" unit (bias-free conv → BN → SiLU), not an mn_conv."""
    return type(module) is ConvNormAct and module.conv.bias is None


def counting_form(model: nn.Module) -> nn.Module:
    """A copy in eval mode with BatchNorm folded only in the "Conv" units, as LeYOLO's GFLOPs are counted."""
    return fuse_bn(model, where=is_conv_unit)


def _build(variant: str, num_classes: int, in_chans: int) -> SpecModel:
    return build_spec(spec_path(variant), num_classes=num_classes, in_chans=in_chans)


def _register(size: int):
    """Register a LeYOLO variant at its published input size, as a detection model."""
    return register_model(family="leyolo", task="detect", paper=PAPER, input_size=(3, size, size), num_classes=80)


@_register(320)
def leyolo_nano(num_classes: int = 80, in_chans: int = 3) -> SpecModel:
    """LeYOLO-Nano (width 1.0), 0.66 GFLOPs at 320."""
    return _build("nano", num_classes, in_chans)


@_register(480)
def leyolo_small(num_classes: int = 80, in_chans: int = 3) -> SpecModel:
    """LeYOLO-Small (width 1.33), 2.53 GFLOPs at 480, 4.51 at 640."""
    return _build("small", num_classes, in_chans)


@_register(640)
def leyolo_medium(num_classes: int = 80, in_chans: int = 3) -> SpecModel:
    """LeYOLO-Medium (width 1.33), 5.8 GFLOPs at 640."""
    return _build("medium", num_classes, in_chans)


@_register(768)
def leyolo_large(num_classes: int = 80, in_chans: int = 3) -> SpecModel:
    """LeYOLO-Large: the Medium network at 768 pixels, 8.4 GFLOPs."""
    return _build("medium", num_classes, in_chans)
