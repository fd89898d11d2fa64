"""The conv → BatchNorm → activation (→ Dropout2d) unit that plain CNNs are made of."""

from __future__ import annotations

from torch import nn


class ConvNormAct(nn.Sequential):
    """Conv2d → BatchNorm2d → activation, with an optional Dropout2d after the activation.

    ``padding`` defaults to "same" for odd kernels at stride 1 (``kernel // 2``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        bias: bool = False,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        act_layer: type[nn.Module] | None = nn.ReLU,
        drop: float | None = None,
    ) -> None:
        padding = kernel_size // 2 if padding is None else padding
        layers: dict[str, nn.Module] = {
            "conv": nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias),
            "bn": nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
        }
        if act_layer is not None:
            layers["act"] = act_layer(inplace=True) if act_layer in (nn.ReLU, nn.ReLU6, nn.SiLU) else act_layer()
        if drop:
            layers["drop"] = nn.Dropout2d(drop)
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)
