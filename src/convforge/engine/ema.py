"""An exponential moving average of a model's weights, for evaluation."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """Keeps ``ema = decay · ema + (1 − decay) · weights`` after every step.

    Floating-point buffers (BatchNorm statistics) are averaged the same way; integer
    buffers (batch counters) are copied.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            new = source[name].detach()
            if value.dtype.is_floating_point:
                value.mul_(self.decay).add_(new, alpha=1 - self.decay)
            else:
                value.copy_(new)
