"""The feed-forward network FCCov-Net uses for vector X: p inputs → ``depth`` hidden ReLU layers → d outputs.

The paper's widths and depths are not available; 64 units and 3 hidden layers are convforge's choice, sized
for p = 10 and n = 1,000. For images, any registered classifier trunk with ``num_classes = d`` serves instead.
"""

from __future__ import annotations

from torch import nn

from convforge.errors import InvalidValueError
from convforge.registry import register_model

PAPER = "Fréchet Cumulative Covariance Net for Deep Nonlinear Sufficient Dimension Reduction with Random Objects"


@register_model(family="sdr_mlp", task="sdr", paper=PAPER, input_size=(10,), num_classes=2)
def sdr_mlp(in_chans: int = 10, num_classes: int = 2, width: int = 64, depth: int = 3) -> nn.Sequential:
    """An MLP from ``in_chans`` predictors to ``num_classes`` (= d) reduced coordinates."""
    for name, value, high in (("width", width, 65_536), ("depth", depth, 100), ("in_chans", in_chans, 10**6)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise InvalidValueError(f"{name} must be an integer from 1 to {high:,}, got {value!r}")
    layers: list[nn.Module] = []
    features = in_chans
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
