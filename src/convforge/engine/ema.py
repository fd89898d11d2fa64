"""An exponential moving average of a model's weights, for evaluation: timm's ``ModelEmaV3``.

The ``n``-th update sets ``ema = d · ema + (1 − d) · weights`` with a decay that warms up
as ``d = min(decay, (n − 1) / (n + 9))`` (timm's warm-up with γ = 10 and power 1): the
first update copies the weights, and early averages follow them rather than the random
initial ones. Floating-point buffers (BatchNorm statistics) are averaged too; integer
ones (batch counters) are copied.
"""

from __future__ import annotations

from timm.utils import ModelEmaV3
from torch import nn

WARMUP_GAMMA = 10.0
WARMUP_POWER = 1.0


def build_ema(model: nn.Module, decay: float) -> ModelEmaV3:
    """An EMA of ``model``'s weights; call ``ema.update(model, step=n)`` after the ``n``-th optimiser step."""
    return ModelEmaV3(model, decay=decay, use_warmup=True, warmup_gamma=WARMUP_GAMMA, warmup_power=WARMUP_POWER)
