"""``residual_stack_net``: stem → residual stack (any layout) → global pooling → classifier.

The network of the deep-versus-shallow study ("Make Deep Networks Shallow Again",
Bermeitinger et al., 2023). The paper gives the shape (a convolutional stem, the
residual stack, pooling and a dense softmax classifier) but not every detail; these are
convforge's choices: the stem is a 3×3 conv → BatchNorm → activation at stride 2 followed
by 2×2 max pooling (the stack works at 1/4 of the input resolution: 7×7 on MNIST, 8×8 on
CIFAR-10), the head averages the stack's output down to 2×2 cells, and the classifier is
one linear layer on those cells.
"""

from __future__ import annotations

import torch
from torch import nn

from convforge.nn.residual_stack import ResidualStack, layout_name, make_activation, parse_layout
from convforge.registry import register_model

PAPER = "Make Deep Networks Shallow Again (Bermeitinger, Hrycej, Handschuh; KDIR 2023)"


class ResidualStackNet(nn.Module):
    """A classifier whose body is one residual stack of ``depth`` branches, ``width`` channels wide.

    ``layout`` is ``sequential``, ``parallel`` or ``taylor<n>``; the parameters are the
    same for every layout, so a trained model converts between them
    (:func:`convforge.to_parallel`).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        width: int = 32,
        depth: int = 4,
        kernel: int = 3,
        act: str = "relu",
        norm: str | None = "batch",
        layout: str = "sequential",
        branch_scale: float = 1.0,
        stem_stride: int = 2,
        stem_pool: int = 2,
        pool_size: int = 2,
    ) -> None:
        super().__init__()
        stack_cls, extra = parse_layout(layout)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            make_activation(act),
            nn.MaxPool2d(stem_pool) if stem_pool > 1 else nn.Identity(),
        )
        self.stack: ResidualStack = stack_cls(width, depth, kernel, act, norm, branch_scale, **extra)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Linear(width * pool_size * pool_size, num_classes)

    @property
    def layout(self) -> str:
        return layout_name(self.stack)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stack(self.stem(x))).flatten(1))


@register_model(family="residual_stack_net", paper=PAPER, input_size=(1, 28, 28), num_classes=10)
def residual_stack_net(**kwargs) -> ResidualStackNet:
    """The study's network with every setting open (width, depth, kernel, act, layout, ...)."""
    return ResidualStackNet(**kwargs)


@register_model(family="residual_stack_net", paper=PAPER, input_size=(1, 28, 28), num_classes=10)
def residual_stack_net_mnist(**kwargs) -> ResidualStackNet:
    """For MNIST-sized inputs: 32 channels, 4 residual 3×3 branches."""
    return ResidualStackNet(**{"width": 32, "depth": 4, **kwargs})


@register_model(family="residual_stack_net", paper=PAPER, input_size=(3, 32, 32), num_classes=10)
def residual_stack_net_cifar(**kwargs) -> ResidualStackNet:
    """For CIFAR-sized inputs: 64 channels, 8 residual 3×3 branches."""
    return ResidualStackNet(**{"width": 64, "depth": 8, **kwargs})
