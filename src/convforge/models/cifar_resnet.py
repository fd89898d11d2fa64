"""ResNets for CIFAR (He et al., 2016, section 4.2): 6n+2 layers on 32×32 inputs.

Three stages of n basic blocks with 16, 32 and 64 channels. Shortcuts are option A
by default, as in the paper's CIFAR experiments: identity, with the input subsampled
and zero-padded in channels where the shape changes, so shortcuts have no
parameters (ResNet-20 has 0.27M parameters). Option B uses a 1×1 conv + BN
projection there instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError
from convforge.nn.pad_shortcut import PadShortcut
from convforge.registry import register_model

PAPER = "Deep Residual Learning for Image Recognition (He et al., 2016)"


class BasicBlock(nn.Module):
    """3×3 conv-BN-ReLU → 3×3 conv-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: str = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            if shortcut == "A":
                self.shortcut = PadShortcut(stride, in_channels, out_channels)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 inputs; ``shortcut`` is ``"A"`` (zero-pad identity) or ``"B"`` (projection).

    ``width`` multiplies the stage widths 16, 32, 64 (rounded), for narrower or wider variants.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A",
                 width: float = 1.0) -> None:  # fmt: skip
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise InvalidValueError(f"depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...), got {depth}")
        if shortcut not in ("A", "B"):
            raise InvalidValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
        if not (isinstance(width, (int, float)) and not isinstance(width, bool) and 0 < width <= 16):
            raise InvalidValueError(f"width must be a multiplier in (0, 16], got {width!r}")
        n = (depth - 2) // 6
        widths = [max(1, round(c * width)) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, channels = [], widths[0]
        for stage, width in enumerate(widths):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(channels, width, stride, shortcut))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        self.num_classes = num_classes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # the classifier keeps PyTorch's default (uniform, 1/sqrt(64)): He's fan-out normal with 10 outputs would
        # give logits of std ~3 and a first loss near 7 instead of ln(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.pool(x).flatten(1))


_CIFAR = dict(family="cifar_resnet", paper=PAPER, input_size=(3, 32, 32), num_classes=10)


@register_model(**_CIFAR, published={"params": "0.27M"})
def resnet20(**kwargs) -> CifarResNet:
    """ResNet-20 for CIFAR, option A shortcuts (0.27M parameters)."""
    return CifarResNet(20, **kwargs)


@register_model(**_CIFAR, published={"params": "0.46M"})
def resnet32(**kwargs) -> CifarResNet:
    """ResNet-32 for CIFAR, option A shortcuts (0.46M parameters)."""
    return CifarResNet(32, **kwargs)


@register_model(**_CIFAR, published={"params": "0.66M"})
def resnet44(**kwargs) -> CifarResNet:
    """ResNet-44 for CIFAR, option A shortcuts (0.66M parameters)."""
    return CifarResNet(44, **kwargs)


@register_model(**_CIFAR, published={"params": "0.85M"})
def resnet56(**kwargs) -> CifarResNet:
    """ResNet-56 for CIFAR, option A shortcuts (0.85M parameters)."""
    return CifarResNet(56, **kwargs)


@register_model(**_CIFAR, published={"params": "1.7M"})
def resnet110(**kwargs) -> CifarResNet:
    """ResNet-110 for CIFAR, option A shortcuts (1.7M parameters)."""
    return CifarResNet(110, **kwargs)
