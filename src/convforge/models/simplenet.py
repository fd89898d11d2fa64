"""SimpleNet (HasanPour et al., 2016): a plain 13-layer CNN that beats deeper ones.

Every conv unit is Conv2d 3×3 (or 1×1) with bias → BatchNorm (eps 1e-5, momentum
0.05) → ReLU; pools are 2×2 max pools followed by Dropout2d; the head is a global
max pool → Dropout → Linear. Weights use Xavier-uniform init with the ReLU gain.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.errors import InvalidValueError
from convforge.nn import PlainConvStack
from convforge.registry import register_model

PAPER = "Lets keep it simple: using simple architectures to outperform deeper and more complex architectures (2016)"

CIFAR_5M = "64 128 128 128 p 128 128 256 p 256 256 p 512 2048k1 256k1 p 256"
CIFAR_5M_EXTRA_POOL = "64 128 128 128 p 128 128 256 p 256 256 p 512 p 2048k1 256k1 p 256"
CIFAR_310K = "64 32 32 32 p 32 32 64 p 64 64 p 128 256k1 64k1 p 64"
CIFAR_460K = "32 32 32 64 p 64 64 64 p 64 64 p 96 96k1 96k1 p 100"
IMAGENET_5M = "64 128 128 128 128 128 p 256 256 256 512 p 2048k1 256k1 256"
IMAGENET_9M = "128 192 192 192 192 192 p 320 320 320 640 p 2560k1 320k1 320"

# Stride mode 1 puts stride 2 on the convs at layer indices 0, 1, 2; mode 2 on 0, 1, 3
# (more accurate, more MACs).
STRIDE_MODES = {1: {0: 2, 1: 2, 2: 2}, 2: {0: 2, 1: 2, 3: 2}}


class SimpleNet(nn.Module):
    """A SimpleNet of any configuration in the plain-stack notation (see :mod:`convforge.nn.plain_stack`)."""

    def __init__(
        self,
        layers: str = CIFAR_5M,
        num_classes: int = 10,
        in_chans: int = 3,
        width: float = 1.0,
        stride_mode: int | None = None,
        conv_drop: float | None = None,
        pool_drop: float | None = 0.1,
        drop_rate: float = 0.1,
    ) -> None:
        super().__init__()
        if stride_mode is not None and stride_mode not in STRIDE_MODES:
            raise InvalidValueError(f"stride_mode must be one of {sorted(STRIDE_MODES)} or None, got {stride_mode!r}")
        self.features = PlainConvStack(
            layers,
            in_chans=in_chans,
            width=width,
            strides=STRIDE_MODES.get(stride_mode) if stride_mode else None,
            conv_bias=True,
            bn_eps=1e-5,
            bn_momentum=0.05,
            conv_drop=conv_drop,
            pool_drop=pool_drop,
        )
        self.global_pool = nn.AdaptiveMaxPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(self.features.out_channels, num_classes)
        self.num_classes = num_classes
        self._init_weights()

    def _init_weights(self) -> None:
        gain = nn.init.calculate_gain("relu")
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, gain=gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pool(self.forward_features(x)).flatten(1)
        return self.classifier(self.drop(x))


_CIFAR = dict(family="simplenet", paper=PAPER, input_size=(3, 32, 32), num_classes=10)
_IMAGENET = dict(family="simplenet", paper=PAPER, input_size=(3, 224, 224), num_classes=1000)


@register_model(**_CIFAR, published={"params": "5,498,378", "macs": "652M"})
def simplenet_cifar_5m(**kwargs) -> SimpleNet:
    """SimpleNet 5.48M for CIFAR (5,498,378 parameters at 10 classes)."""
    return SimpleNet(CIFAR_5M, **kwargs)


@register_model(**_CIFAR, published={"params": "5,498,378"})
def simplenet_cifar_5m_extra_pool(**kwargs) -> SimpleNet:
    """SimpleNet 5.48M with an extra pool after the 512 conv: the PyTorch 95.51 % CIFAR-10 model."""
    return SimpleNet(CIFAR_5M_EXTRA_POOL, **kwargs)


@register_model(**_CIFAR, published={"params": "312,362"})
def simplenet_cifar_310k(**kwargs) -> SimpleNet:
    """Slim SimpleNet, 312,362 parameters at 10 classes."""
    return SimpleNet(CIFAR_310K, **kwargs)


@register_model(**_CIFAR)
def simplenet_cifar_460k(**kwargs) -> SimpleNet:
    """Slim SimpleNet, about 460K parameters."""
    return SimpleNet(CIFAR_460K, **kwargs)


def _imagenet(layers: str, mode: int, width: float = 1.0, **kwargs) -> SimpleNet:
    kwargs.setdefault("pool_drop", None)
    return SimpleNet(layers, stride_mode=mode, width=width, **kwargs)


@register_model(**_IMAGENET, published={"params": "5,752,808", "macs": "1.34G"})
def simplenet_imagenet_5m_m1(**kwargs) -> SimpleNet:
    """SimpleNet 5m for ImageNet, stride mode 1 (5,752,808 parameters; 1.34 GMACs at 224)."""
    return _imagenet(IMAGENET_5M, 1, **kwargs)


@register_model(**_IMAGENET, published={"params": "5,752,808", "macs": "1.69G"})
def simplenet_imagenet_5m_m2(**kwargs) -> SimpleNet:
    """SimpleNet 5m for ImageNet, stride mode 2 (1.69 GMACs at 224)."""
    return _imagenet(IMAGENET_5M, 2, **kwargs)


@register_model(**_IMAGENET, published={"params": "9,508,968", "macs": "2.77G"})
def simplenet_imagenet_9m_m1(**kwargs) -> SimpleNet:
    """SimpleNet 9m for ImageNet, stride mode 1 (9,508,968 parameters; 2.77 GMACs at 224)."""
    return _imagenet(IMAGENET_9M, 1, **kwargs)


@register_model(**_IMAGENET, published={"params": "9,508,968", "macs": "3.56G"})
def simplenet_imagenet_9m_m2(**kwargs) -> SimpleNet:
    """SimpleNet 9m for ImageNet, stride mode 2 (3.56 GMACs at 224)."""
    return _imagenet(IMAGENET_9M, 2, **kwargs)


@register_model(**_IMAGENET, published={"params": "3.3M", "macs": "0.76G"})
def simplenet_imagenet_small_075_m1(**kwargs) -> SimpleNet:
    """SimpleNet 5m at 0.75× width, stride mode 1 (about 3.3M parameters)."""
    return _imagenet(IMAGENET_5M, 1, width=0.75, **kwargs)


@register_model(**_IMAGENET, published={"params": "3.3M", "macs": "0.95G"})
def simplenet_imagenet_small_075_m2(**kwargs) -> SimpleNet:
    """SimpleNet 5m at 0.75× width, stride mode 2."""
    return _imagenet(IMAGENET_5M, 2, width=0.75, **kwargs)


@register_model(**_IMAGENET, published={"params": "1.5M", "macs": "0.34G"})
def simplenet_imagenet_small_050_m1(**kwargs) -> SimpleNet:
    """SimpleNet 5m at 0.5× width, stride mode 1 (about 1.5M parameters)."""
    return _imagenet(IMAGENET_5M, 1, width=0.5, **kwargs)


@register_model(**_IMAGENET, published={"params": "1.5M", "macs": "0.43G"})
def simplenet_imagenet_small_050_m2(**kwargs) -> SimpleNet:
    """SimpleNet 5m at 0.5× width, stride mode 2."""
    return _imagenet(IMAGENET_5M, 2, width=0.5, **kwargs)
