"""Multi-head attention restricted to a band of the time axis: each step attends only to steps within ±dilation.

MM-Pyramid's fixed-size attention block: a residual attention layer followed by a feed-forward
layer, each after a LayerNorm, whose attention is masked so that a pyramid unit of dilation d
sees a window of 2d + 1 segments. As released, the LayerNorm is applied to the queries only:
keys and values are the raw inputs (``x`` itself, or ``context``). The mask is built once per
(length, dilation, device) and kept; the attention is
``torch.nn.functional.scaled_dot_product_attention`` with that boolean mask, so the profiler
counts it and LinearScope refuses it by name.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError


@functools.lru_cache(maxsize=64)
def band_mask(length: int, dilation: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """A boolean ``length × length`` mask, True where ``|i − j| ≤ dilation`` (the steps a query may attend to)."""
    steps = torch.arange(length, device=device)
    return (steps[:, None] - steps[None, :]).abs() <= dilation


class BandMaskedAttention(nn.Module):
    """``x + Attn(LN(x), context)`` then ``+ FFN(LN(·))``, the attention masked to ±``dilation`` steps.

    Inputs are ``[batch, time, channels]``; ``context`` (default: ``x``) supplies keys and values.
    """

    def __init__(self, channels: int, heads: int = 8, dilation: int = 1, feedforward: int | None = None,
                 dropout: float = 0.2, attention_dropout: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or channels % heads:
            raise InvalidValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
        if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
            raise InvalidValueError(f"dilation must be an integer >= 0, got {dilation!r}")
        self.heads, self.dilation, self.attention_dropout = heads, dilation, attention_dropout
        self.norm_query = nn.LayerNorm(channels)
        self.query, self.key, self.value = (nn.Linear(channels, channels) for _ in range(3))
        self.out = nn.Linear(channels, channels)
        self.norm_ff = nn.LayerNorm(channels)
        hidden = feedforward or channels
        self.feedforward = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Dropout(dropout),
                                         nn.Linear(hidden, channels))  # fmt: skip
        self.drop = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, channels = x.shape
        return x.view(batch, time, self.heads, channels // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        source = x if context is None else context
        q = self._split(self.query(self.norm_query(x)))
        k, v = self._split(self.key(source)), self._split(self.value(source))
        mask = band_mask(x.shape[1], self.dilation, x.device)
        drop = self.attention_dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        attended = attended.transpose(1, 2).reshape(x.shape)
        x = x + self.drop(self.out(attended))
        return x + self.drop(self.feedforward(self.norm_ff(x)))
