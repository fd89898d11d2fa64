"""HAN's hybrid attention layer (Tian et al., ECCV 2020): each stream attends to itself and to the other stream.

``x ← LN(x + Attn(x, x) + Attn(x, y))`` then ``x ← LN(x + FFN(x))``, post-norm, over the whole clip
(no band). One layer serves both directions, as in HAN: audio ← (audio, visual) and
visual ← (visual, audio) share its weights. The attention is
``torch.nn.functional.scaled_dot_product_attention``. Streams are ``[batch, time, channels]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError


class _Attention(nn.Module):
    """Multi-head attention of ``x`` over ``context`` (queries from ``x``, keys and values from ``context``)."""

    def __init__(self, channels: int, heads: int, dropout: float) -> None:
        super().__init__()
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or channels % heads:
            raise InvalidValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
        self.heads, self.dropout = heads, dropout
        self.query, self.key, self.value = (nn.Linear(channels, channels) for _ in range(3))
        self.out = nn.Linear(channels, channels)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, channels = x.shape
        return x.view(batch, time, self.heads, channels // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(context)), self._split(self.value(context))
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(attended.transpose(1, 2).reshape(x.shape))


class HybridAttention(nn.Module):
    """One HAN layer applied to an (audio, visual) pair: self- plus cross-modal attention, then a feed-forward."""

    def __init__(self, channels: int, heads: int = 1, feedforward: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attention = _Attention(channels, heads, dropout)
        self.cross_attention = _Attention(channels, heads, dropout)
        hidden = feedforward or channels
        self.feedforward = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Dropout(dropout),
                                         nn.Linear(hidden, channels))  # fmt: skip
        self.norm_attention, self.norm_feedforward = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.drop = nn.Dropout(dropout)

    def one_way(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``x`` after attending to itself and to ``other``."""
        x = self.norm_attention(x + self.drop(self.self_attention(x, x)) + self.drop(self.cross_attention(x, other)))
        return self.norm_feedforward(x + self.drop(self.feedforward(x)))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.one_way(audio, visual), self.one_way(visual, audio)
