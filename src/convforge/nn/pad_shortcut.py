"""The option-A shortcut of CIFAR ResNets: subsample, then zero-pad the new channels.

Each output channel either copies one input channel or is zero; :attr:`PadShortcut.sources`
says which. That list is the module's whole structure, so a pruned shortcut (fewer
outputs, or inputs that were removed and now read as zero) is described by it alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError


class PadShortcut(nn.Module):
    """Subsample by ``stride``; output channel j copies input channel ``sources[j]``, or is zero where that is -1.

    Built from ``in_channels`` and ``out_channels``, the inputs sit in the middle and the
    ``out_channels - in_channels`` new channels are zeros split on both sides, as in He et al. (2016).
    """

    def __init__(self, stride: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.in_channels = in_channels
        extra = out_channels - in_channels
        half = extra // 2
        self.sources: list[int] = [-1] * half + list(range(in_channels)) + [-1] * (extra - half)

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name in ("sources", "in_channels") and "sources" in self.__dict__ and "in_channels" in self.__dict__:
            self._refresh_index(check=name == "sources")

    def _refresh_index(self, check: bool = True) -> None:
        """``index``: ``sources`` as positions in the input plus one trailing zero channel (kept with the module,
        so ``forward`` has no branches and traces). ``check``: refuse sources that are not input channels (a
        new ``in_channels`` alone is not checked, as ``sources`` may follow it)."""
        old = self._buffers.get("index")
        if check and not self.sources_fit():
            raise InvalidValueError(f"sources must be input channels 0..{self.in_channels - 1} or -1 (zero), "
                                    f"got {self.sources}")  # fmt: skip
        index = [s if s >= 0 else self.in_channels for s in self.sources]
        device = old.device if old is not None else None
        self.register_buffer("index", torch.tensor(index, dtype=torch.long, device=device), persistent=False)

    def sources_fit(self) -> bool:
        """Whether every entry of ``sources`` is an input channel or -1."""
        return all(isinstance(s, int) and -1 <= s < self.in_channels for s in self.sources)

    @property
    def out_channels(self) -> int:
        return len(self.sources)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, 1)).index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, in_channels={self.in_channels}, out_channels={self.out_channels}"
