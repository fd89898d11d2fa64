"""Plain conv stacks written in a compact layer notation.

The notation lists layers left to right, separated by spaces or commas:

- ``64`` is a 3×3 conv unit with 64 output channels;
- ``256k1`` is a 1×1 conv unit with 256 output channels;
- ``p`` is a 2×2 max pool with stride 2.

SimpleNet's CIFAR model, for example, is
``"64 128 128 128 p 128 128 256 p 256 256 p 512 2048k1 256k1 p 256"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.nn.conv_norm_act import ConvNormAct

_TOKEN = re.compile(r"^(?:(?P<pool>p)|(?P<channels>\d+)(?:k(?P<kernel>\d+))?)$")


@dataclass(frozen=True)
class LayerSpec:
    """One entry of the notation: a conv unit (``channels``, ``kernel``) or a pool."""

    kind: str  # "conv" or "pool"
    channels: int = 0
    kernel: int = 3


def parse_layers(notation: str) -> list[LayerSpec]:
    """Parse the layer notation into a list of :class:`LayerSpec`."""
    specs = []
    for token in notation.replace(",", " ").split():
        match = _TOKEN.match(token)
        if match is None:
            raise ConvforgeError(
                f"layer {token!r} in {notation!r} is not understood; use a channel count (64), "
                "a channel count with a kernel (256k1) or a pool (p)"
            )
        if match["pool"]:
            specs.append(LayerSpec("pool"))
        else:
            specs.append(LayerSpec("conv", int(match["channels"]), int(match["kernel"] or 3)))
    return specs


class PlainConvStack(nn.Sequential):
    """A sequence of :class:`ConvNormAct` units and max pools built from the layer notation.

    ``strides`` maps a layer index (in the notation, pools included) to the stride
    of that conv; ``width`` scales every channel count, rounding to the nearest integer.
    """

    def __init__(
        self,
        notation: str,
        in_chans: int = 3,
        width: float = 1.0,
        strides: dict[int, int] | None = None,
        conv_bias: bool = False,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        conv_drop: float | None = None,
        pool_drop: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 64:
            raise InvalidValueError(f"width must be a multiplier in (0, 64], got {width!r}")
        strides = strides or {}
        channels = in_chans
        for index, spec in enumerate(parse_layers(notation)):
            if spec.kind == "pool":
                self.add_module(str(index), nn.MaxPool2d(2, 2))
                if pool_drop:
                    self.add_module(f"{index}_drop", nn.Dropout2d(pool_drop))
                continue
            out_channels = max(1, round(spec.channels * width))
            self.add_module(
                str(index),
                ConvNormAct(
                    channels,
                    out_channels,
                    spec.kernel,
                    stride=strides.get(index, 1),
                    bias=conv_bias,
                    bn_eps=bn_eps,
                    bn_momentum=bn_momentum,
                    drop=conv_drop,
                ),
            )
            channels = out_channels
        bad = sorted(i for i in strides if not isinstance(self._modules.get(str(i)), ConvNormAct))
        if bad:
            raise ConvforgeError(f"strides name layers {bad} of {notation!r}, which are not conv units")
        self.out_channels = channels
