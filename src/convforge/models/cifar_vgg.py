"""VGG-11 and VGG-16 (Simonyan & Zisserman, 2015) with BatchNorm and a CIFAR head.

The convolutional body is VGG's, with BatchNorm after every conv; on 32×32 inputs
five pools leave a 1×1×512 map, so the head is a single Linear(512, classes)
instead of ImageNet VGG's three 4096-wide layers.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn import PlainConvStack
from convforge.registry import register_model

PAPER = "Very Deep Convolutional Networks for Large-Scale Image Recognition (Simonyan & Zisserman, 2015)"

VGG11 = "64 p 128 p 256 256 p 512 512 p 512 512 p"
VGG16 = "64 64 p 128 128 p 256 256 256 p 512 512 512 p 512 512 512 p"


class CifarVGG(nn.Module):
    """A VGG body in the plain-stack notation, then global average pool → Linear."""

    def __init__(self, layers: str = VGG16, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.features = PlainConvStack(layers, in_chans=in_chans, conv_bias=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(self.features.out_channels, num_classes)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


_CIFAR = dict(family="cifar_vgg", paper=PAPER, input_size=(3, 32, 32), num_classes=10)


@register_model(**_CIFAR)
def vgg11_cifar(**kwargs) -> CifarVGG:
    """VGG-11 with BatchNorm and a one-layer CIFAR head (9.2M parameters)."""
    return CifarVGG(VGG11, **kwargs)


@register_model(**_CIFAR)
def vgg16_cifar(**kwargs) -> CifarVGG:
    """VGG-16 with BatchNorm and a one-layer CIFAR head (14.7M parameters)."""
    return CifarVGG(VGG16, **kwargs)
